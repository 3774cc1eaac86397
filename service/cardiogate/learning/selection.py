"""Which results go to reviewers, and why (``jobs.review_criterion``).

A result is selected by the first of these criteria that holds and is switched on in
``settings.review_strategy`` (:class:`~cardiogate.config.ReviewStrategy`):

1. ``uncertainty`` — the task's :meth:`~cardiogate.tasks.Task.review_reason` names a doubt
   of the analysis (a borderline lesion, a probability in the review band, ...);
2. ``ood`` — that reason says the input is unlike the model's training data (the model
   card's out-of-distribution profile, :mod:`cardiogate.inference.ood`);
3. ``shadow_disagreement`` — the candidate model running in shadow disagrees with the
   serving one (:meth:`~cardiogate.tasks.Task.compare`); decided after the serving result
   is reported, since the candidate runs after it;
4. ``audit`` — a random draw: a fixed share (``audit_fraction``) of the other results,
   drawn from the series' UID, so a re-run of the same series decides the same.

``daily_budget`` caps the results selected per UTC day, all criteria together (counted
from ``jobs.review_criterion`` of the jobs finished that day, the job itself apart). Beyond
it nothing more is selected: the result stays unflagged (its own ``needs_review`` in the
result JSON and its SR still say what the analysis found), and
``cardiogate_review_over_budget_total{task,criterion}`` counts what the criterion would
have selected. With several worker threads or replicas the budget may be overrun by the
results decided at the same moment.

The yield of a criterion (``cardiogate_review_yield_ratio``) is the share of its settled
cases whose reviewers changed the result: :func:`yield_ratios`.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal

from sqlalchemy import Connection, Table, func, select, update

from cardiogate.config import ReviewStrategy
from cardiogate.inference.ood import PREFIX as OOD_PREFIX
from cardiogate.learning.cases import SettledCase
from cardiogate.metrics import REVIEW_OVER_BUDGET, REVIEW_SELECTED, REVIEW_YIELD
from cardiogate.store import Store
from cardiogate.store.reviews import MAX_REVIEW_REASON
from cardiogate.store.tables import Job

log = logging.getLogger(__name__)

Criterion = Literal["uncertainty", "ood", "shadow_disagreement", "audit"]
CRITERIA: tuple[Criterion, ...] = ("uncertainty", "ood", "shadow_disagreement", "audit")

_jobs: Table = Job.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Selection:
    """The decision on one result: ``criterion`` and ``reason`` when it goes to review;
    ``over_budget`` names the criterion that would have selected it beyond the budget."""

    criterion: Criterion | None = None
    reason: str | None = None
    over_budget: Criterion | None = None

    @property
    def needs_review(self) -> bool:
        return self.criterion is not None


NOT_SELECTED = Selection()


def reason_criteria(review_reason: str | None) -> tuple[bool, bool]:
    """(uncertain, unlike training data) of a task's review reason. The tasks join their
    reasons with ``"; "`` and put the out-of-distribution one, which starts with
    :data:`~cardiogate.inference.ood.PREFIX`, last."""
    if not review_reason:
        return False, False
    before, ood, _ = review_reason.partition(OOD_PREFIX)
    return bool(before.strip(" ;")), bool(ood)


def audit_draw(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` (a SeriesInstanceUID): the audit's lottery."""
    digest = hashlib.sha256(f"cardiogate-audit:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decide(
    strategy: ReviewStrategy,
    *,
    review_reason: str | None,
    key: str,
    selected_today: int,
    disagreement: str | None = None,
) -> Selection:
    """Whether a result goes to review, by the first criterion that holds (module
    docstring). ``review_reason``: the task's; ``key``: the series' UID (the audit draw);
    ``selected_today``: results already selected today; ``disagreement``: the shadow
    comparison's summary when the candidate disagrees."""
    uncertain, ood = reason_criteria(review_reason)
    found: tuple[Criterion, str] | None = None
    if strategy.uncertainty and uncertain and review_reason:
        found = ("uncertainty", review_reason)
    elif strategy.ood and ood and review_reason:
        found = ("ood", review_reason)
    elif strategy.shadow_disagreement and disagreement:
        found = ("shadow_disagreement", f"the candidate model disagrees: {disagreement}")
    elif strategy.audit_fraction > 0 and audit_draw(key) < strategy.audit_fraction:
        found = ("audit", f"random audit of {strategy.audit_fraction:.0%} of results")
    if found is None:
        return NOT_SELECTED
    criterion, reason = found
    if strategy.daily_budget is not None and selected_today >= strategy.daily_budget:
        return Selection(over_budget=criterion)
    return Selection(criterion, reason[:MAX_REVIEW_REASON])


def count(task: str, selection: Selection) -> None:
    """The decision's metrics and, over budget, a log line."""
    if selection.criterion is not None:
        REVIEW_SELECTED.labels(task, selection.criterion).inc()
    elif selection.over_budget is not None:
        REVIEW_OVER_BUDGET.labels(task, selection.over_budget).inc()
        log.info(
            "%s result not selected for review (%s): today's review budget is spent",
            task,
            selection.over_budget,
        )


def day_start(now: datetime) -> datetime:
    """The start of ``now``'s UTC day (times are naive UTC, as in the store)."""
    return datetime.combine(now.date(), time())


def selected_today(store: Store, now: datetime, job_id: int | None = None) -> int:
    """The jobs finished since the start of ``now``'s UTC day that were selected for
    review, ``job_id`` apart (a re-run does not count against itself)."""
    query = (
        select(func.count())
        .select_from(_jobs)
        .where(_jobs.c.review_criterion.is_not(None), _jobs.c.finished_at >= day_start(now))
    )
    if job_id is not None:
        query = query.where(_jobs.c.id != job_id)
    with store.transaction() as conn:
        return int(conn.execute(query).scalar_one())


def flag_later(store: Store, job_id: int, digest: str, selection: Selection) -> bool:
    """Flag a reported job selected after its report (``shadow_disagreement``), only while
    its result is still ``digest`` and it is not flagged already; False otherwise."""
    if selection.criterion is None:
        return False
    with store.transaction() as conn:
        updated = conn.execute(
            update(_jobs)
            .where(
                _jobs.c.id == job_id,
                _jobs.c.result_digest == digest,
                _jobs.c.needs_review.is_(False),
            )
            .values(
                needs_review=True,
                review_reason=selection.reason,
                review_criterion=selection.criterion,
            )
        ).rowcount
    return bool(updated)


def record_criterion(conn: Connection, job_id: int, criterion: Criterion | None) -> None:
    """Record why the job was selected (None: it was not), in the transaction that records
    its result."""
    conn.execute(update(_jobs).where(_jobs.c.id == job_id).values(review_criterion=criterion))


def yield_ratios(cases: Iterable[tuple[str, bool]]) -> dict[str, float]:
    """Per criterion, the share of settled cases whose reviewers changed the result, from
    (criterion, changed) pairs; a criterion without settled cases is absent."""
    settled: dict[str, int] = defaultdict(int)
    changed: dict[str, int] = defaultdict(int)
    for criterion, was_changed in cases:
        settled[criterion] += 1
        changed[criterion] += was_changed
    return {criterion: changed[criterion] / n for criterion, n in settled.items()}


def publish_yield(task: str, cases: Iterable[tuple[str, bool]]) -> dict[str, float]:
    """Set ``cardiogate_review_yield_ratio{task,criterion}`` from ``task``'s settled cases."""
    ratios = yield_ratios(cases)
    for criterion, ratio in ratios.items():
        REVIEW_YIELD.labels(task, criterion).set(ratio)
    return ratios


@dataclass(frozen=True, slots=True)
class ReviewedJob:
    """A job with a settled result: its task, why it was selected, and whether the
    reviewers' fused labels changed the model's result."""

    job_id: int
    task: str
    criterion: str | None
    changed: bool


def reviewed_jobs(store: Store, settled: Sequence[SettledCase]) -> list[ReviewedJob]:
    """The jobs of ``settled`` (:func:`cardiogate.learning.cases.settled_fused`), each with
    the criterion that selected it, ``changed`` when the fused labels of its reviews differ
    from the model's own; a job whose later result was settled again counts once, by its
    latest settlement."""
    ids = sorted({case.job.id for case in settled})
    with store.transaction() as conn:
        criteria = dict(
            conn.execute(
                select(_jobs.c.id, _jobs.c.review_criterion).where(_jobs.c.id.in_(ids))
            ).all()
        )
    jobs: dict[int, ReviewedJob] = {}
    for case in settled:
        job = case.job
        jobs[job.id] = ReviewedJob(
            job.id, job.task or "none", criteria.get(job.id), case.fused.changed
        )
    return list(jobs.values())


def publish_yields(store: Store, settled: Sequence[SettledCase]) -> None:
    """Set ``cardiogate_review_yield_ratio`` for every task from the ``settled`` results."""
    by_task: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for job in reviewed_jobs(store, settled):
        if job.criterion is not None:
            by_task[job.task].append((job.criterion, job.changed))
    for task, cases in by_task.items():
        publish_yield(task, cases)
