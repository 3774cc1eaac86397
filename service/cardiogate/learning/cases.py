"""A reviewed case: the verdicts on one result turned into labels, fused, and settled or
not (:func:`cardiogate.store.reviews.is_settled`).

Each review asserts its task's labels (:meth:`~cardiogate.tasks.Task.review_labels` of the
judged result with the reviewer's corrections) and its verdict (key ``verdict``, ``agree`` or
``disagree``), so a tie of verdicts is unresolved like any other. An adjudicator's review
decides alone: the case's labels are the (latest) adjudicator's, and everyone's agreement
is measured against them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from cardiogate.learning.agreement import overall_agreement
from cardiogate.learning.fusion import VERDICT, Fused, fuse
from cardiogate.learning.labels import Label
from cardiogate.store import Store
from cardiogate.store.records import JobRecord
from cardiogate.store.reviews import ReviewRecord, is_settled, settled_cases

if TYPE_CHECKING:
    from cardiogate.tasks import Task, Tasks

ADJUDICATOR = "adjudicator"


def judged_result(review: ReviewRecord) -> dict[str, Any]:
    """The result a verdict judged, parsed (empty when unreadable)."""
    try:
        parsed = json.loads(review.result or "null")
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def corrections_of(task: Task | None, review: ReviewRecord) -> BaseModel | None:
    """The review's corrections as the task's ``correction_model``; None without any, or
    when they no longer parse (a task changed since)."""
    body = review.corrections_json()
    if task is None or body is None:
        return None
    try:
        return task.correction_model.model_validate(body)
    except ValidationError:
        return None


def labels_of(task: Task | None, result: Mapping[str, Any], review: ReviewRecord) -> list[Label]:
    """What one review asserts: the task's labels with its corrections, and its verdict."""
    own = [] if task is None else task.review_labels(result, corrections_of(task, review))
    return [*own, Label(VERDICT, "category", review.verdict)]


def model_labels(task: Task | None, result: Mapping[str, Any]) -> list[Label]:
    """The model's own labels of a result (a review agreeing without corrections)."""
    own = [] if task is None else task.review_labels(result, None)
    return [*own, Label(VERDICT, "category", "agree")]


def fuse_case(
    task: Task | None, result: Mapping[str, Any], reviews: Sequence[ReviewRecord]
) -> Fused:
    """The fused labels of the reviews of ``result``; an adjudicator's decide alone."""
    distance = 5.0 if task is None else task.added_match_distance
    adjudicators = [r.reviewer for r in reviews if r.role == ADJUDICATOR]
    return fuse(
        [(r.reviewer, labels_of(task, result, r)) for r in reviews],
        distance,
        model_labels(task, result),
        decided_by=adjudicators[-1] if adjudicators else None,
    )


def settles(
    task: Task | None, result: Mapping[str, Any], required: int
) -> Callable[[list[ReviewRecord]], bool]:
    """For :func:`~cardiogate.store.reviews.record_review`: whether the verdicts settle."""

    def decide(reviews: list[ReviewRecord]) -> bool:
        if any(r.role == ADJUDICATOR for r in reviews):
            return True
        if len(reviews) < required:
            return False
        return is_settled(reviews, required, fuse_case(task, result, reviews).unresolved)

    return decide


@dataclass(frozen=True, slots=True)
class SettledCase:
    """A settled result: its job (as it is now), the reviews of that result, and their
    fusion."""

    job: JobRecord
    reviews: list[ReviewRecord]
    fused: Fused


def settled_fused(store: Store, tasks: Tasks) -> list[SettledCase]:
    """Every settled result (:func:`~cardiogate.store.reviews.settled_cases`), its reviews
    fused once, oldest settlement first."""
    cases = []
    for job, reviews in settled_cases(store):
        task = tasks.get(job.task or "")
        cases.append(SettledCase(job, reviews, fuse_case(task, judged_result(reviews[0]), reviews)))
    return cases


def agreement_by_task(cases: Sequence[SettledCase]) -> dict[str, Any]:
    """The reviewers' agreement over ``cases`` (:func:`overall_agreement`), with the same
    per task under ``per_task``."""
    by_task: dict[str, list[Fused]] = {}
    for case in cases:
        by_task.setdefault(case.job.task or "", []).append(case.fused)
    return {
        **overall_agreement([case.fused for case in cases]),
        "per_task": {task: overall_agreement(fused) for task, fused in sorted(by_task.items())},
    }
