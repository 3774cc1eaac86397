"""Percentile bootstrap confidence intervals over cases (scans, cines).

A metric is any function of a list of per-case outcomes that returns a number, or None when
the cases do not define it (no positive cine for an AUC, no matched lesion for an error).
Resampling whole cases keeps what belongs to one case together (its lesions, its false
positives), so a lesion-level ratio such as sensitivity gets the cluster bootstrap's wider,
honest interval (Efron & Tibshirani 1993, ch. 13, percentile interval).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

Case = TypeVar("Case")
Metric = Callable[[Sequence[Any]], float | None]

RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A metric on all cases and its percentile bootstrap interval.

    ``low``/``high`` are None when fewer than half the resamples define the metric (e.g. a
    stratum with one positive case); ``defined`` says how many did."""

    estimate: float | None
    low: float | None
    high: float | None
    cases: int
    resamples: int
    defined: int

    def as_dict(self, digits: int = 4) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, digits)

        return {"estimate": r(self.estimate), "ci95": [r(self.low), r(self.high)]}


def resample_indices(n: int, resamples: int, seed: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """``(resamples, n)`` case indices drawn with replacement, the same for every metric of
    one seed (so that intervals of related metrics come from the same resamples)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(resamples, n), dtype=np.int64)


def percentile_interval(
    cases: Sequence[Case],
    metric: Callable[[Sequence[Case]], float | None],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
    indices: np.ndarray[Any, np.dtype[np.int64]] | None = None,
) -> Interval:
    """``metric`` on ``cases`` and its ``level`` percentile bootstrap interval from
    ``resamples`` case resamples drawn with ``seed`` (or the given ``indices``)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1, got {level}")
    estimate = metric(cases) if cases else None
    if not cases:
        return Interval(None, None, None, 0, 0, 0)
    drawn = resample_indices(len(cases), resamples, seed) if indices is None else indices
    values = []
    for row in drawn:
        value = metric([cases[i] for i in row])
        if value is not None and np.isfinite(value):
            values.append(float(value))
    if len(values) < len(drawn) / 2:
        return Interval(estimate, None, None, len(cases), len(drawn), len(values))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high), len(cases), len(drawn), len(values))


def intervals(
    cases: Sequence[Case],
    metrics: dict[str, Callable[[Sequence[Case]], float | None]],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Every metric with its 95% interval, all from the same resamples."""
    drawn = resample_indices(len(cases), resamples, seed) if cases else None
    return {
        name: percentile_interval(cases, metric, indices=drawn, resamples=resamples).as_dict()
        for name, metric in metrics.items()
    }


def ratio(numerator: Callable[[Any], float], denominator: Callable[[Any], float]) -> Metric:
    """A pooled ratio over cases: sum of numerators over sum of denominators (None when the
    denominator sums to 0), e.g. lesions found over true lesions."""

    def metric(cases: Sequence[Any]) -> float | None:
        below = sum(denominator(c) for c in cases)
        return None if below == 0 else sum(numerator(c) for c in cases) / below

    return metric


def mean_of(value: Callable[[Any], float | None]) -> Metric:
    """The mean over cases of a per-case value (cases where it is None left out)."""

    def metric(cases: Sequence[Any]) -> float | None:
        values = [v for v in (value(c) for c in cases) if v is not None]
        return float(np.mean(values)) if values else None

    return metric


def band(value: float, bands: tuple[tuple[float, str], ...]) -> str:
    """The label of the last band whose lower bound ``value`` reaches."""
    return [label for low, label in bands if value >= low][-1]


def stratified(
    cases: Sequence[Case],
    stratum: Callable[[Case], dict[str, str]],
    metrics: dict[str, Callable[[Sequence[Case]], float | None]],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{stratum: {band: {"cases": n, metric: interval...}}}``: the metrics within each
    band of each stratum, ``stratum(case)`` giving a case's band in each, bootstrapped within
    the band (its cases resampled)."""
    bands: dict[str, dict[str, list[Case]]] = {}
    for case in cases:
        for name, value in stratum(case).items():
            bands.setdefault(name, {}).setdefault(value, []).append(case)
    return {
        name: {
            value: {
                "cases": len(members),
                **intervals(members, metrics, resamples=resamples, seed=seed),
            }
            for value, members in sorted(by_value.items())
        }
        for name, by_value in sorted(bands.items())
    }
