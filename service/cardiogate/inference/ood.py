"""Is an input like the data a model was calibrated on? An out-of-distribution (OOD) check.

A task's feature extractor reduces an input to a few numbers with units (image noise in
HU, slice thickness in mm, ...). An :class:`OODProfile`, stored in the model card's ``ood``
section and fitted by :func:`fit_profile` on in-family calibration cases, holds each
feature's robust centre (median) and scale (1.4826 x MAD, never below the feature's
``min_scale``) and its 1st-99th percentile range; optionally the covariance of the robust
z-scores for a Mahalanobis distance; and a distance threshold chosen so that few in-family
cases exceed it. :func:`assess` measures one input's distance and, over the threshold, says
in plain words which features are unusual, with their values and training ranges. The
features are measurements of the image and its geometry, never identifiers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAD_TO_SD = 1.4826  # MAD x this = the standard deviation of a normal distribution
NAME_Z = 3.0  # a feature this many robust scales from the centre is named in the reason
MAX_NAMED = 3  # at most this many features in a reason
Z_CLIP = 5.0  # calibration z-scores are clipped to this before the covariance (robustness)
SHRINKAGE = 0.1  # correlations shrink this much towards none (a well-conditioned covariance)
PREFIX = "input unlike the model's training data"


class FeatureSpec(BaseModel):
    """A feature as its extractor declares it: its key, plain-words label and unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    label: str = Field(min_length=1)  # "image noise"
    unit: str = ""  # "HU", "mm", "%" ...; "" for a count
    min_scale: float = Field(gt=0)  # the smallest spread that counts, in the feature's unit
    decimals: int = Field(default=1, ge=0, le=6)

    def number(self, value: float) -> str:
        """``value`` to ``decimals`` places, trailing zeros dropped: ``"3"``, ``"0.6"``."""
        text = f"{value:.{self.decimals}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
        return "0" if text == "-0" else text

    def show(self, value: float) -> str:
        """``value`` rounded, with its unit: ``"41 HU"``, ``"12%"``, ``"30 frames"``."""
        return self.with_unit(self.number(value))

    def with_unit(self, text: str) -> str:
        """``text`` followed by the unit (no space before ``%``)."""
        if not self.unit:
            return text
        return f"{text}{self.unit}" if self.unit.startswith("%") else f"{text} {self.unit}"


class FeatureStats(FeatureSpec):
    """A feature's in-family statistics."""

    centre: float  # median
    scale: float = Field(gt=0)  # max(1.4826 x MAD, min_scale)
    low: float  # 1st percentile
    high: float  # 99th percentile

    def z(self, value: float) -> float:
        """Robust z-score: how many scales ``value`` lies from the centre."""
        return (value - self.centre) / self.scale

    def training_range(self) -> str:
        """``"8-26 HU"``, or ``"3 mm"`` when the range rounds to one value."""
        low, high = self.number(self.low), self.number(self.high)
        if low == high:
            return self.show(self.low)
        negative = low.startswith("-") or high.startswith("-")
        return self.with_unit(f"{low} to {high}" if negative else f"{low}-{high}")


class OODCalibration(BaseModel):
    """Where the profile comes from and how it performs."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(min_length=1)  # the generator (or data set) and its cases
    fit_cases: int = Field(ge=1)  # cases the statistics and threshold come from
    threshold_rule: str = Field(min_length=1)  # e.g. "99th percentile of fit-case distances"
    held_out_data: str = ""
    held_out_cases: int = Field(default=0, ge=0)
    held_out_flag_rate: float | None = Field(default=None, ge=0, le=1)  # false flags, in family
    other_data: str = ""  # another family, drawn differently
    other_cases: int = Field(default=0, ge=0)
    other_flag_rate: float | None = Field(default=None, ge=0, le=1)
    notes: str = ""


class OODProfile(BaseModel):
    """A model card's ``ood`` section."""

    model_config = ConfigDict(extra="forbid")

    features: list[FeatureStats] = Field(min_length=1)
    covariance: list[list[float]] | None = None  # of the robust z-scores; None: Euclidean
    threshold: float = Field(gt=0)  # an input farther than this is flagged
    calibration: OODCalibration

    @field_validator("features")
    @classmethod
    def _unique_names(cls, features: list[FeatureStats]) -> list[FeatureStats]:
        names = [f.name for f in features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        return features

    @model_validator(mode="after")
    def _covariance_fits(self) -> OODProfile:
        if self.covariance is None:
            return self
        n = len(self.features)
        matrix = np.asarray(self.covariance, dtype=np.float64)
        if matrix.shape != (n, n):
            raise ValueError(f"covariance must be {n} x {n}, one row per feature")
        if not np.allclose(matrix, matrix.T, atol=1e-9) or np.linalg.eigvalsh(matrix).min() <= 0:
            raise ValueError("covariance must be symmetric positive definite")
        return self


@dataclass(frozen=True)
class Deviation:
    """One feature of an input against its training statistics."""

    feature: FeatureStats
    value: float
    z: float

    def describe(self) -> str:
        """``"image noise 41 HU (training 8-26 HU)"``."""
        f = self.feature
        return f"{f.label} {f.show(self.value)} (training {f.training_range()})"


@dataclass(frozen=True)
class OODVerdict:
    """The check of one input: its distance, whether it is flagged and why."""

    distance: float
    threshold: float
    flagged: bool
    reason: str | None  # plain words, None when not flagged
    deviations: list[Deviation]  # the features measured, most unusual first
    missing: list[str]  # features the input did not give (not counted in the distance)


def _distance(profile: OODProfile, z: np.ndarray[Any, Any], present: list[int]) -> float:
    if profile.covariance is None:
        return float(np.sqrt(np.sum(z**2)))
    sub = np.asarray(profile.covariance, dtype=np.float64)[np.ix_(present, present)]
    return float(np.sqrt(max(0.0, float(z @ np.linalg.solve(sub, z)))))


def assess(profile: OODProfile, features: Mapping[str, float]) -> OODVerdict:
    """Compare one input's ``features`` (name to value) with ``profile``.

    Features the profile does not know are ignored; those it knows that are absent or not
    finite are listed in ``missing`` and left out of the distance (Mahalanobis over the
    features present). The reason names the features at least :data:`NAME_Z` robust scales
    from their centre (at most :data:`MAX_NAMED`, most unusual first), or, when none is, the
    two that contribute most ("an unusual combination").
    """
    present, values, missing = [], [], []
    for index, stats in enumerate(profile.features):
        value = features.get(stats.name)
        if value is None or not np.isfinite(value):
            missing.append(stats.name)
        else:
            present.append(index)
            values.append(float(value))
    deviations = [
        Deviation(profile.features[i], v, profile.features[i].z(v))
        for i, v in zip(present, values, strict=True)
    ]
    z = np.array([d.z for d in deviations], dtype=np.float64)
    distance = _distance(profile, z, present) if present else 0.0
    deviations.sort(key=lambda d: -abs(d.z))
    flagged = distance > profile.threshold
    reason = None
    if flagged:
        named = [d for d in deviations if abs(d.z) >= NAME_Z][:MAX_NAMED]
        if named:
            reason = f"{PREFIX}: " + ", ".join(d.describe() for d in named)
        else:
            reason = f"{PREFIX}: an unusual combination of " + " and ".join(
                d.describe() for d in deviations[:2]
            )
    return OODVerdict(distance, profile.threshold, flagged, reason, deviations, missing)


def _statistics(
    specs: Sequence[FeatureSpec], cases: Sequence[Mapping[str, float]], mahalanobis: bool
) -> tuple[list[FeatureStats], list[list[float]] | None]:
    """Each feature's statistics over ``cases`` and, with ``mahalanobis``, the covariance."""
    stats = []
    for spec in specs:
        column = np.array([c.get(spec.name, np.nan) for c in cases], dtype=np.float64)
        column = column[np.isfinite(column)]
        if column.size == 0:
            raise ValueError(f"no calibration case gives the feature {spec.name}")
        centre = float(np.median(column))
        scale = max(MAD_TO_SD * float(np.median(np.abs(column - centre))), spec.min_scale)
        low, high = (float(v) for v in np.percentile(column, [1, 99]))
        stats.append(
            FeatureStats(**spec.model_dump(), centre=centre, scale=scale, low=low, high=high)
        )
    if not mahalanobis:
        return stats, None
    z = np.array([[s.z(c.get(s.name, s.centre)) for s in stats] for c in cases], dtype=np.float64)
    z = np.clip(np.nan_to_num(z), -Z_CLIP, Z_CLIP)
    raw = np.atleast_2d(np.cov(z, rowvar=False)) if len(cases) > 1 else np.eye(len(stats))
    sd = np.sqrt(np.maximum(np.diag(raw), 1.0))
    inner = np.sqrt(np.maximum(np.diag(raw), 1e-12))
    correlation = np.clip(raw / np.outer(inner, inner), -1.0, 1.0)
    np.fill_diagonal(correlation, 1.0)
    correlation = (1 - SHRINKAGE) * correlation + SHRINKAGE * np.eye(len(stats))
    return stats, (correlation * np.outer(sd, sd)).tolist()


def fit_profile(
    specs: Sequence[FeatureSpec],
    cases: Sequence[Mapping[str, float]],
    *,
    calibration: OODCalibration,
    quantile: float = 0.99,
    mahalanobis: bool = True,
    folds: int = 5,
) -> OODProfile:
    """Fit a profile to in-family ``cases`` (each a feature dict, as the extractor gives).

    Each feature's centre is its median, its scale 1.4826 x MAD floored at ``min_scale``; a
    case missing a feature is left out of that feature's statistics. With ``mahalanobis``
    the covariance is that of the z-scores (clipped to :data:`Z_CLIP`), each variance at
    least 1 and the correlations shrunk by :data:`SHRINKAGE`. The threshold is the
    ``quantile`` of the cases' out-of-fold distances (each case measured by a profile fitted
    without its fold, as an unseen case would be), or of their own distances when there
    are fewer than two cases per fold.
    """
    if not cases:
        raise ValueError("no calibration cases")
    stats, covariance = _statistics(specs, cases, mahalanobis)
    distances: list[float] = []
    crossed = folds >= 2 and len(cases) >= 2 * folds
    for k in range(folds if crossed else 1):
        fitted, held = stats, covariance
        scored = list(cases)
        if crossed:
            scored = [c for i, c in enumerate(cases) if i % folds == k]
            rest = [c for i, c in enumerate(cases) if i % folds != k]
            fitted, held = _statistics(specs, rest, mahalanobis)
        fold = OODProfile(features=fitted, covariance=held, threshold=1.0, calibration=calibration)
        distances += [assess(fold, c).distance for c in scored]
    threshold = max(float(np.quantile(distances, quantile)), 1e-6)
    return OODProfile(
        features=stats, covariance=covariance, threshold=threshold, calibration=calibration
    )


def flag_rate(profile: OODProfile, cases: Sequence[Mapping[str, float]]) -> float:
    """The share of ``cases`` that :func:`assess` flags."""
    if not cases:
        raise ValueError("no cases")
    return sum(assess(profile, c).flagged for c in cases) / len(cases)
