"""Label fusion: what several reviews of one result say together.

- categorical keys: majority vote; a tie is *unresolved* (an adjudicator decides);
- value keys (e.g. ``lesion/0/percent``): the median;
- mask items (category keys ``<name>/<n>`` such as ``lesion/3``, and the clusters of added
  items): the majority vote over every reviewer (one who did not add a cluster's finding
  says ``none``); where the vote is tied, presence (a category other than ``none``) as
  fused by STAPLE (Warfield et al., IEEE TMI 2004; ``SimpleITK.STAPLEImageFilter``) on
  per-reviewer binary images in which each item covers pixels in proportion to its area
  (a reviewer STAPLE finds unreliable counts less) decides whether the finding is there,
  and the majority of the present votes its category; a tie among those, or as many
  reviewers saying ``none`` as seeing a finding, is unresolved.
  STAPLE's per-reviewer sensitivity and specificity are reported with the agreement;
- added items (key ``added``, with a position) of several reviewers within
  ``match_distance`` pixels of each other are one finding, fused as mask item
  ``added/<n>``. Sub-keys of an item fused absent (``lesion/3/vessel``) are dropped.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise
from typing import Any

import numpy as np
import SimpleITK

from cardiogate.learning.agreement import (
    Agreement,
    ReviewerAgreement,
    cohen_kappa,
    dice,
    fleiss_from_ratings,
)
from cardiogate.learning.labels import NONE, Label

_sitk: Any = SimpleITK  # untyped: called through Any
ADDED = "added"
VERDICT = "verdict"  # the key the store gives each review's agree/disagree


@dataclass(frozen=True, slots=True)
class Fused:
    """The fused labels of one case, what stays unresolved, and the reviewers' agreement;
    ``changed``: the fused labels differ from the model's own (a majority ``disagree``
    verdict, a finding removed or relabelled, a %DS changed, a finding added)."""

    labels: list[Label]
    unresolved: list[str]
    agreement: Agreement
    changed: bool
    reviewers: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "labels": [_label_dict(x) for x in self.labels],
            "unresolved": list(self.unresolved),
            "agreement": self.agreement.as_dict(),
            "changed": self.changed,
            "reviewers": list(self.reviewers),
        }


def _label_dict(label: Label) -> dict[str, Any]:
    out: dict[str, Any] = {"key": label.key, "kind": label.kind, "value": label.value}
    if label.weight != 1.0:
        out["weight"] = label.weight
    if label.position is not None:
        out["position"] = list(label.position)
    return out


def is_mask_item(key: str) -> bool:
    """``lesion/3`` and ``added/0`` are mask items; ``lesion/3/vessel`` and ``verdict`` not."""
    return key.count("/") == 1


def _at(label: Label) -> tuple[float, float, float]:
    return label.position if label.position is not None else (0.0, 0.0, 0.0)


def _clusters(
    added: Sequence[tuple[int, Label]], match_distance: float
) -> list[list[tuple[int, Label]]]:
    """Single-linkage clusters of added items (reviewer number, label): two items of
    different reviewers link when they lie on the same slice or frame (the position's first
    coordinate) within ``match_distance`` pixels in plane. A lesion over two slices is two
    items, as the result counts it."""
    parent = list(range(len(added)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in combinations(range(len(added)), 2):
        (ri, a), (rj, b) = (added[i][0], added[i][1].position), (added[j][0], added[j][1].position)
        if a is None or b is None or ri == rj or a[0] != b[0]:
            continue
        if math.dist(a[1:], b[1:]) <= match_distance:
            parent[root(i)] = root(j)
    groups: dict[int, list[tuple[int, Label]]] = {}
    for i, item in enumerate(added):
        groups.setdefault(root(i), []).append(item)
    clusters = list(groups.values())
    clusters.sort(key=lambda c: tuple(np.mean([_at(x) for _, x in c], axis=0)))
    return clusters


def _expand(
    reviews: Sequence[tuple[str, list[Label]]], match_distance: float
) -> tuple[list[dict[str, Label]], list[str]]:
    """Each review as key -> label, added items replaced by their cluster ``added/<n>``
    (``none`` for a reviewer without an item in it), and the keys in order."""
    keyed: list[dict[str, Label]] = [{} for _ in reviews]
    order: list[str] = []
    added: list[tuple[int, Label]] = []
    for n, (_, labels) in enumerate(reviews):
        for label in labels:
            if label.key == ADDED and label.position is not None:
                added.append((n, label))
                continue
            keyed[n].setdefault(label.key, label)
            if label.key not in order:
                order.append(label.key)
    for c, cluster in enumerate(_clusters(added, match_distance)):
        key = f"{ADDED}/{c}"
        order.append(key)
        centre = tuple(float(v) for v in np.mean([_at(x) for _, x in cluster], axis=0))
        weight = float(np.mean([x.weight for _, x in cluster]))
        for n in range(len(reviews)):
            values = [str(x.value) for m, x in cluster if m == n]
            value = Counter(values).most_common(1)[0][0] if values else NONE
            keyed[n][key] = Label(key, "category", value, weight, centre)  # type: ignore[arg-type]
    return keyed, order


def _staple(
    presence: np.ndarray[Any, Any], weights: Sequence[float]
) -> tuple[np.ndarray[Any, Any], list[float | None], list[float | None]]:
    """STAPLE over items: ``presence`` (reviewers x items) of booleans; each item covers
    ``max(1, round(weight))`` pixels. Returns per item the probability of presence, and per
    reviewer the sensitivity and specificity (counted against the consensus when all
    reviewers agree, where STAPLE is undefined)."""
    pixels = np.array([max(1, round(w)) for w in weights], dtype=int)
    images = np.repeat(presence.astype(np.uint8), pixels, axis=1)
    if (images == images[0]).all():
        truth = images[0].astype(bool)
        sens = None if not truth.any() else 1.0
        spec = None if truth.all() else 1.0
        n = presence.shape[0]
        return presence[0].astype(float), [sens] * n, [spec] * n
    staple = _sitk.STAPLEImageFilter()
    staple.SetForegroundValue(1)
    result = staple.Execute([_sitk.GetImageFromArray(row[np.newaxis, :]) for row in images])
    probability = _sitk.GetArrayFromImage(result)[0]
    bounds = np.concatenate([[0], np.cumsum(pixels)])
    per_item = np.array([probability[a:b].mean() for a, b in pairwise(bounds)])
    return (
        per_item,
        [float(s) for s in staple.GetSensitivity()],
        [float(s) for s in staple.GetSpecificity()],
    )


def _majority(values: Sequence[str]) -> tuple[str, bool]:
    """The most common value and whether it is a tie (the tie's first value, sorted)."""
    counts = Counter(values).most_common()
    top = counts[0][1]
    tied = sorted(v for v, c in counts if c == top)
    return tied[0], len(tied) > 1


def fuse(
    reviews: Sequence[tuple[str, list[Label]]],
    match_distance: float,
    model: Sequence[Label] | None = None,
    decided_by: str | None = None,
) -> Fused:
    """Fuse the labels of several reviews (reviewer id, labels) of one result; ``model``:
    the model's own labels (``Task.review_labels(result, None)``), for ``changed``.
    ``decided_by``: the reviewer (an adjudicator) whose labels are the result, nothing
    unresolved; everyone's agreement is then measured against them."""
    names = [name for name, _ in reviews]
    keyed, order = _expand(reviews, match_distance)
    mask_keys = [k for k in order if is_mask_item(k) and _kind(keyed, k) == "category"]
    presence = np.array(
        [[r[k].value != NONE if k in r else False for k in mask_keys] for r in keyed],
        dtype=bool,
    ).reshape(len(keyed), len(mask_keys))
    weights = [_weight(keyed, k) for k in mask_keys]
    if mask_keys and keyed:
        probability, sensitivity, specificity = _staple(presence, weights)
    else:
        probability = np.zeros(len(mask_keys))
        sensitivity = specificity = [None] * len(keyed)
    present = {k: bool(p >= 0.5) for k, p in zip(mask_keys, probability, strict=True)}

    fused: dict[str, Label] = {}
    unresolved: list[str] = []
    for key in order:
        votes = [r[key] for r in keyed if key in r]
        if not votes:
            continue
        first = votes[0]
        if first.kind == "value":
            value: str | float = float(statistics.median(float(v.value) for v in votes))
        elif key in present:
            # a reviewer who did not add a cluster's finding says there is none
            said = [str(v.value) for v in votes] + [NONE] * (len(keyed) - len(votes))
            value, tie = _majority(said)
            yes = [v for v in said if v != NONE]
            if tie and 2 * len(yes) == len(said):  # as many say none as see a finding
                unresolved.append(key)
            elif tie:  # STAPLE's presence decides, then the majority of the present votes
                value, tie = _majority(yes) if present[key] and yes else (NONE, False)
                if tie:
                    unresolved.append(key)
        else:
            value, tie = _majority([str(v.value) for v in votes])
            if tie:
                unresolved.append(key)
        fused[key] = Label(key, first.kind, value, first.weight, first.position)
    if decided_by is not None:
        fused, unresolved = _decided(keyed[names.index(decided_by)], fused), []
    labels = [
        x
        for x in fused.values()
        if not _under_absent(x.key, fused)
        and not (x.key.startswith(f"{ADDED}/") and x.value == NONE and x.key not in unresolved)
    ]
    unresolved = [k for k in unresolved if not _under_absent(k, fused)]
    agreement = _agreement(names, keyed, fused, mask_keys, weights, sensitivity, specificity)
    return Fused(labels, unresolved, agreement, _changed(labels, model), names)


def _decided(review: dict[str, Label], fused: dict[str, Label]) -> dict[str, Label]:
    """The fused keys with one review's values: ``none`` for a mask item it lacks (an added
    finding of others), other keys it lacks dropped."""
    out = {}
    for key, label in fused.items():
        mine = review.get(key)
        if mine is not None:
            out[key] = Label(key, label.kind, mine.value, label.weight, label.position)
        elif is_mask_item(key):
            out[key] = Label(key, label.kind, NONE, label.weight, label.position)
    return out


def _kind(keyed: Sequence[dict[str, Label]], key: str) -> str:
    return next(r[key].kind for r in keyed if key in r)


def _weight(keyed: Sequence[dict[str, Label]], key: str) -> float:
    return next(r[key].weight for r in keyed if key in r)


def _under_absent(key: str, fused: dict[str, Label]) -> bool:
    """Whether ``key`` is a sub-key (``lesion/3/vessel``) of an item fused absent."""
    parts = key.split("/")
    if len(parts) < 3:
        return False
    item = fused.get("/".join(parts[:2]))
    return item is not None and item.value == NONE


def _changed(labels: Sequence[Label], model: Sequence[Label] | None) -> bool:
    if model is None:
        return False
    own = {x.key: x for x in model}
    for label in labels:
        if label.key == VERDICT:
            if label.value == "disagree":
                return True
            continue
        if label.key.startswith(f"{ADDED}/"):
            return True
        mine = own.get(label.key)
        if mine is None:
            return True
        if label.kind == "value":
            if abs(float(label.value) - float(mine.value)) > 1e-6:
                return True
        elif label.value != mine.value:
            return True
    fused_keys = {x.key for x in labels}
    return any(k not in fused_keys and k != VERDICT for k in own if not _dropped(k, labels))


def _dropped(key: str, labels: Sequence[Label]) -> bool:
    """A model key missing from the fused labels only because its item was removed."""
    parts = key.split("/")
    item = "/".join(parts[:2])
    return any(x.key == item and x.value == NONE for x in labels) and len(parts) > 2


def _agreement(
    names: Sequence[str],
    keyed: Sequence[dict[str, Label]],
    fused: dict[str, Label],
    mask_keys: Sequence[str],
    weights: Sequence[float],
    sensitivity: Sequence[float | None],
    specificity: Sequence[float | None],
) -> Agreement:
    categorical = [k for k, x in fused.items() if x.kind == "category"]
    shared = [k for k in categorical if all(k in r for r in keyed)]
    ratings = [[str(r[k].value) for r in keyed] for k in shared]
    fleiss = fleiss_from_ratings(ratings) if len(keyed) >= 2 and ratings else None
    cohen = {
        f"{names[i]}|{names[j]}": cohen_kappa(
            *zip(
                *(
                    (str(keyed[i][k].value), str(keyed[j][k].value))
                    for k in categorical
                    if k in keyed[i] and k in keyed[j]
                ),
                strict=True,
            )
        )
        if any(k in keyed[i] and k in keyed[j] for k in categorical)
        else None
        for i, j in combinations(range(len(keyed)), 2)
    }
    truth = [fused[k].value != NONE for k in mask_keys]
    per_reviewer = []
    for n, (name, review) in enumerate(zip(names, keyed, strict=True)):
        mine = [k for k in categorical if k in review]
        mask = [review[k].value != NONE if k in review else False for k in mask_keys]
        per_reviewer.append(
            ReviewerAgreement(
                reviewer=name,
                agreed=sum(review[k].value == fused[k].value for k in mine),
                compared=len(mine),
                dice=dice(mask, truth, weights) if mask_keys else None,
                sensitivity=sensitivity[n],
                specificity=specificity[n],
            )
        )
    return Agreement(len(keyed), fleiss, cohen, per_reviewer)
