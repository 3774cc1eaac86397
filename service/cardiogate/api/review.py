"""Review routes under ``/api/v1``: the queue of flagged results not yet settled, recording
a reviewer's verdict and corrections, a result's reviews with their fused labels, and the
reviewers' agreement (the active-learning loop).

A reviewer is named by the header ``X-Cardiogate-Reviewer`` (a pseudonymous id; without
it, ``anonymous``, as older clients send). A result is settled by ``review_required``
agreeing reviews or one by an adjudicator (``review_adjudicators``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, status
from pydantic import BaseModel, ValidationError

from cardiogate import metrics
from cardiogate.api.deps import (
    JobIdPath,
    Limit,
    Offset,
    SettingsDep,
    StoreDep,
    TasksDep,
    require_token,
)
from cardiogate.api.errors import ErrorOut, error_responses
from cardiogate.api.review_schemas import (
    AgreementOut,
    ReviewCaseOut,
    ReviewItemOut,
    ReviewOut,
    ReviewPage,
    VerdictIn,
)
from cardiogate.config import Settings
from cardiogate.errors import StoreError
from cardiogate.learning.agreement import overall_agreement
from cardiogate.learning.cases import (
    agreement_by_task,
    fuse_case,
    judged_result,
    settled_fused,
    settles,
)
from cardiogate.learning.fusion import Fused
from cardiogate.learning.selection import publish_yields
from cardiogate.store import Store
from cardiogate.store.jobs import JobQueue
from cardiogate.store.records import JobRecord
from cardiogate.store.reviews import (
    ANONYMOUS,
    ReviewRecord,
    flagged,
    get_review,
    record_review,
    review_queue,
    reviews_of,
)
from cardiogate.tasks import Task, Tasks

REVIEWER_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
ReviewerHeader = Annotated[
    str,
    Header(
        alias="X-Cardiogate-Reviewer",
        pattern=REVIEWER_PATTERN,
        description="The reviewer's pseudonymous id: 1-64 of A-Z a-z 0-9 . _ -",
    ),
]
ReviewerQuery = Annotated[
    str | None,
    Query(pattern=REVIEWER_PATTERN, description="Leave out results this reviewer judged"),
]
_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "Not allowed for this reviewer"}
}

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_token)],
    tags=["review"],
    responses=error_responses(401, 422, 503),
)


def _required(settings: Settings | None) -> int:
    return (
        Settings.model_fields["review_required"].default
        if settings is None
        else settings.review_required
    )


def _adjudicators(settings: Settings | None) -> list[str]:
    return [] if settings is None else settings.review_adjudicators


@router.get("/review", response_model=ReviewPage)
def list_review(
    store: StoreDep,
    tasks: TasksDep,
    limit: Limit = 100,
    offset: Offset = 0,
    reviewer: ReviewerQuery = None,
) -> ReviewPage:
    """Reported or delivered jobs whose current result needs review and is not settled yet
    (a re-run flagged again is back, whatever was said of its earlier result), newest result
    first, with the total; with ``reviewer``, those that reviewer has not judged."""
    waiting, total = review_queue(store, limit, offset, reviewer)
    items = []
    for f in waiting:
        reviews = reviews_of(store, f.job.id, f.job.result_digest)
        items.append(
            ReviewItemOut(
                job_id=f.job.id,
                SeriesInstanceUID=f.job.SeriesInstanceUID,
                StudyInstanceUID=f.job.StudyInstanceUID,
                task=f.job.task,
                model_name=f.job.model_name,
                model_version=f.job.model_version,
                result_digest=f.job.result_digest,
                reason=f.reason,
                summary=_summary(tasks, f.job.task, f.result),
                reviews=len(reviews),
                reviewers=[r.reviewer for r in reviews],
                settled=False,
            )
        )
    return ReviewPage(total=total, limit=limit, offset=offset, items=items)


def _summary(tasks: Tasks, task: str | None, result: Mapping[str, Any]) -> dict[str, Any]:
    """The task's review summary of a result; empty for a task no longer installed."""
    found = tasks.get(task or "")
    return {} if found is None else found.review_summary(result)


@router.get("/review/agreement", response_model=AgreementOut)
def get_agreement(store: StoreDep, tasks: TasksDep) -> AgreementOut:
    """The reviewers' agreement over every settled result: Fleiss' and Cohen's kappa, the
    share of labels each reviewer gave as fused, Dice and STAPLE's sensitivity and
    specificity, overall, per reviewer and per task."""
    return AgreementOut(**agreement_by_task(settled_fused(store, tasks)))


@router.post("/review/agreement", include_in_schema=False)
def agreement_is_read_only() -> None:
    """POST /review/agreement is no verdict on a job called "agreement": 405, not 422."""
    raise HTTPException(
        status.HTTP_405_METHOD_NOT_ALLOWED,
        "method not allowed: /api/v1/review/agreement is read with GET",
        headers={"Allow": "GET"},
    )


@router.get("/review/{job_id}", response_model=ReviewCaseOut, responses=error_responses(404))
def get_case(
    job_id: JobIdPath, store: StoreDep, tasks: TasksDep, settings: SettingsDep
) -> ReviewCaseOut:
    """Every review of the job's current result, their fused labels, the keys an
    adjudicator must still decide, their agreement, and whether they changed the result."""
    job = JobQueue(store).get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job")
    reviews = reviews_of(store, job_id, job.result_digest)
    fused = _fused(tasks, job, reviews)
    return ReviewCaseOut(
        job_id=job_id,
        task=job.task,
        model_name=job.model_name,
        model_version=job.model_version,
        result_digest=job.result_digest,
        needs_review=flagged(job) is not None,
        required=_required(settings),
        settled=any(r.settles for r in reviews),
        reviews=[_out(r, any(x.settles for x in reviews)) for r in reviews],
        fused=None if fused is None else fused.as_dict()["labels"],
        unresolved=[] if fused is None else fused.unresolved,
        agreement=None if fused is None else fused.agreement.as_dict(),
        changed=None if fused is None else fused.changed,
    )


def _fused(tasks: Tasks, job: JobRecord, reviews: list[ReviewRecord]) -> Fused | None:
    if not reviews:
        return None
    return fuse_case(tasks.get(job.task or ""), judged_result(reviews[0]), reviews)


def _out(review: ReviewRecord, settled: bool) -> ReviewOut:
    return ReviewOut(
        job_id=review.job_id,
        verdict=review.verdict,
        note=review.note,
        model_name=review.model_name,
        model_version=review.model_version,
        result_digest=review.result_digest,
        reviewed_at=review.created_at,
        reviewer=review.reviewer,
        role=review.role,
        corrections=review.corrections_json(),
        settled=settled,
    )


def _corrections(task: Task | None, result: Mapping[str, Any], body: VerdictIn) -> str | None:
    """The body's corrections checked against the task's correction model, as JSON."""
    if body.corrections is None:
        return None
    if task is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "corrections: the job's task is not installed, so they cannot be checked",
        )
    try:
        parsed: BaseModel = task.correction_model.model_validate(body.corrections)
    except ValidationError as e:
        problems = [
            f"corrections.{'.'.join(str(p) for p in x['loc'])}: {x['msg']}" for x in e.errors()
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "; ".join(problems)) from e
    problem = task.correction_problem(result, parsed)
    if problem is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"corrections.{problem}")
    return json.dumps(parsed.model_dump(mode="json", exclude_defaults=True), sort_keys=True)


@router.post(
    "/review/{job_id}",
    response_model=ReviewOut,
    responses={**error_responses(400, 404, 409), **_FORBIDDEN},
)
def post_verdict(
    job_id: JobIdPath,
    body: VerdictIn,
    store: StoreDep,
    tasks: TasksDep,
    settings: SettingsDep,
    reviewer: ReviewerHeader = ANONYMOUS,
) -> ReviewOut:
    """Record this reviewer's ``agree`` or ``disagree`` (a note, and corrections in the
    task's correction model) on a flagged job's current result; 409 when the job does not
    need review, its result is settled already (an adjudicator may still decide), this
    reviewer already judged it, or its result is not the one ``result_digest`` names; 403
    for role ``adjudicator`` from a reviewer not listed in ``review_adjudicators``."""
    if body.role == "adjudicator" and reviewer not in _adjudicators(settings):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"reviewer {reviewer} may not review as adjudicator: the adjudicators are the "
            "ids listed in CARDIOGATE_REVIEW_ADJUDICATORS",
        )
    job = JobQueue(store).get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job")
    judged = flagged(job)
    if judged is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"job {job_id} does not need review: only a reported or delivered job whose "
            "result is flagged can be reviewed",
        )
    if body.result_digest is not None and body.result_digest != job.result_digest:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"job {job_id} has a new result since it was listed: review that one",
        )
    task = tasks.get(job.task or "")
    corrections = _corrections(task, judged.result, body)
    earlier = reviews_of(store, job_id, job.result_digest)
    if body.role != "adjudicator" and any(r.settles for r in earlier):
        if any(r.reviewer == reviewer for r in earlier):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"job {job_id} already has a verdict on this result from reviewer {reviewer}",
            )
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"job {job_id}'s result is settled already ({len(earlier)} review(s)); only an "
            "adjudicator may still decide",
        )
    decide = settles(task, judged.result, _required(settings))
    if not record_review(
        store,
        job,
        body.verdict,
        body.note,
        reviewer=reviewer,
        role=body.role,
        corrections=corrections,
        settles=decide,
    ):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"job {job_id} already has a verdict on this result from reviewer {reviewer}",
        )
    review = get_review(store, job_id, job.result_digest, reviewer)
    if review is None:  # recorded a moment ago: only a store in trouble loses it
        raise StoreError("the verdict could not be read back after it was recorded")
    metrics.REVIEWS.labels(job.task or "", review.role, review.verdict).inc()
    if review.settles and not any(r.settles for r in earlier):
        _count_settled(store, tasks, job)
    return _out(review, review.settles or any(r.settles for r in earlier))


def _count_settled(store: Store, tasks: Tasks, job: JobRecord) -> None:
    """Metrics of a result just settled: whether it changed, and the task's mean kappa."""
    task = tasks.get(job.task or "")
    reviews = reviews_of(store, job.id, job.result_digest)
    case = fuse_case(task, judged_result(reviews[0]), reviews)
    metrics.REVIEWS_SETTLED.labels(job.task or "", str(case.changed).lower()).inc()
    settled = settled_fused(store, tasks)  # fused once, for the kappa and the yields
    kappa = overall_agreement([c.fused for c in settled if c.job.task == job.task])
    if kappa["fleiss_kappa"] is not None:
        metrics.REVIEW_KAPPA.labels(job.task or "").set(kappa["fleiss_kappa"])
    publish_yields(store, settled)
