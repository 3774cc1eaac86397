"""Agreement between reviewers: Fleiss' and Cohen's kappa, area-weighted Dice, and the
dataset-level summary of many fused cases.

Kappa is ``(p_o - p_e) / (1 - p_e)``; when every rating falls in one category ``p_e`` is 1
and kappa is undefined (None), not 1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cardiogate.learning.fusion import Fused


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of an items x categories table of counts, each row summing to the same
    number of raters (>= 2); None when undefined (one category, or fewer than 2 raters)."""
    rows = [list(r) for r in table if sum(r) > 0]
    if not rows:
        return None
    n = sum(rows[0])
    if n < 2 or any(sum(r) != n for r in rows):
        return None
    items = len(rows)
    p_bar = sum((sum(c * c for c in r) - n) / (n * (n - 1)) for r in rows) / items
    share = [sum(r[j] for r in rows) / (items * n) for j in range(len(rows[0]))]
    p_e = sum(p * p for p in share)
    if p_e >= 1.0 - 1e-12:
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def fleiss_from_ratings(items: Sequence[Sequence[str]]) -> float | None:
    """Fleiss' kappa of categorical ratings, one sequence of the raters' categories per
    item (every item rated by the same number of raters)."""
    categories = sorted({c for item in items for c in item})
    counts = [Counter(item) for item in items]
    return fleiss_kappa([[c[k] for k in categories] for c in counts])


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' categories on the same items; None when undefined."""
    if len(a) != len(b) or not a:
        return None
    n = len(a)
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    p_e = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if p_e >= 1.0 - 1e-12:
        return None
    return (p_o - p_e) / (1.0 - p_e)


def dice(a: Sequence[bool], b: Sequence[bool], weights: Sequence[float]) -> float | None:
    """Dice of two presence masks over items of the given areas: ``2|A∩B| / (|A| + |B|)``;
    None when both are empty."""
    both = sum(w for x, y, w in zip(a, b, weights, strict=True) if x and y)
    total = sum(w for x, w in zip(a, weights, strict=True) if x) + sum(
        w for y, w in zip(b, weights, strict=True) if y
    )
    return None if total <= 0 else 2.0 * both / total


@dataclass(frozen=True, slots=True)
class ReviewerAgreement:
    """One reviewer against the fused labels of a case."""

    reviewer: str
    agreed: int  # categorical keys where the reviewer's category is the fused one
    compared: int  # categorical keys the reviewer labelled
    dice: float | None  # area-weighted presence mask vs the fused one
    sensitivity: float | None  # STAPLE's estimate (or counted, when all agree)
    specificity: float | None

    @property
    def fraction(self) -> float | None:
        return None if self.compared == 0 else self.agreed / self.compared

    def as_dict(self) -> dict[str, Any]:
        return {
            "reviewer": self.reviewer,
            "agreement": _round(self.fraction),
            "agreed": self.agreed,
            "compared": self.compared,
            "dice": _round(self.dice),
            "sensitivity": _round(self.sensitivity),
            "specificity": _round(self.specificity),
        }


@dataclass(frozen=True, slots=True)
class Agreement:
    """The agreement of one case's reviews."""

    reviewers: int
    fleiss_kappa: float | None  # over categorical keys all reviewers labelled, >= 2 reviewers
    cohen_kappa: Mapping[str, float | None] = field(default_factory=dict)  # "a|b" pairs
    per_reviewer: Sequence[ReviewerAgreement] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "reviewers": self.reviewers,
            "fleiss_kappa": _round(self.fleiss_kappa),
            "cohen_kappa": {pair: _round(k) for pair, k in self.cohen_kappa.items()},
            "per_reviewer": [r.as_dict() for r in self.per_reviewer],
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def overall_agreement(cases: Sequence[Fused]) -> dict[str, Any]:
    """Agreement over many fused cases: per reviewer (cases, pooled agreement with the
    fused labels, mean Dice, sensitivity and specificity) and overall (mean Fleiss' and
    Cohen's kappa over the cases where they are defined, pooled agreement, share of cases
    the reviewers changed)."""
    by_reviewer: dict[str, list[ReviewerAgreement]] = {}
    for case in cases:
        for r in case.agreement.per_reviewer:
            by_reviewer.setdefault(r.reviewer, []).append(r)
    per_reviewer = []
    for reviewer in sorted(by_reviewer):
        rows = by_reviewer[reviewer]
        agreed, compared = sum(r.agreed for r in rows), sum(r.compared for r in rows)
        per_reviewer.append(
            {
                "reviewer": reviewer,
                "cases": len(rows),
                "agreement": _round(agreed / compared if compared else None),
                "dice": _round(_mean([r.dice for r in rows])),
                "sensitivity": _round(_mean([r.sensitivity for r in rows])),
                "specificity": _round(_mean([r.specificity for r in rows])),
            }
        )
    agreed = sum(r.agreed for rows in by_reviewer.values() for r in rows)
    compared = sum(r.compared for rows in by_reviewer.values() for r in rows)
    return {
        "cases": len(cases),
        "changed": sum(c.changed for c in cases),
        "fleiss_kappa": _round(_mean([c.agreement.fleiss_kappa for c in cases])),
        "cohen_kappa": _round(_mean([k for c in cases for k in c.agreement.cohen_kappa.values()])),
        "agreement": _round(agreed / compared if compared else None),
        "per_reviewer": per_reviewer,
    }
