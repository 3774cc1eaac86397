"""Response and request schemas of the review routes (:mod:`cardiogate.api.review`): the
queue, a reviewer's verdict and corrections, a result's fused reviews, the agreement."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cardiogate.api.schemas import UtcTimestamps


class ReviewItemOut(BaseModel):
    """One job whose current result waits for a reviewer's verdict; no patient names or
    IDs. ``result_digest`` names that result (a verdict may quote it)."""

    job_id: int
    SeriesInstanceUID: str
    StudyInstanceUID: str
    task: str | None
    model_name: str | None
    model_version: str | None
    result_digest: str | None
    reason: str
    summary: dict[str, Any]
    reviews: int = 0  # verdicts on this result so far (it is not settled yet)
    reviewers: list[str] = Field(default_factory=list)  # their pseudonymous ids
    settled: bool = False


class ReviewPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ReviewItemOut]


class VerdictIn(BaseModel):
    """A verdict; with ``result_digest`` (from the queue) it is refused if the job's result
    changed since it was listed."""

    model_config = ConfigDict(extra="forbid")

    verdict: Literal["agree", "disagree"]
    # no NUL: PostgreSQL text cannot hold one, so it would fail there as a server error
    note: str = Field(
        default="", max_length=2000, pattern=r"^[^\x00]*$", description="free text without NUL"
    )
    result_digest: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")
    corrections: dict[str, Any] | None = Field(
        default=None,
        description="What the reviewer corrects, in the task's correction model (calcium: "
        "lesions [{index, artery}], added [{slice_index, row, col, artery}]; stenosis: "
        "lesions [{index, real, vessel, segment, percent}], added [{frame, row, col, vessel, "
        "segment, percent}])",
    )
    role: Literal["reviewer", "adjudicator"] = Field(
        default="reviewer",
        description="adjudicator: the review settles the result alone (only for the ids in "
        "CARDIOGATE_REVIEW_ADJUDICATORS)",
    )


class ReviewOut(UtcTimestamps):
    job_id: int
    verdict: str
    note: str
    model_name: str | None
    model_version: str | None
    result_digest: str | None
    reviewed_at: datetime
    reviewer: str = "anonymous"
    role: str = "reviewer"
    corrections: dict[str, Any] | None = None
    settled: bool = False  # the result is settled (by this review or an earlier one)


class ReviewCaseOut(BaseModel):
    """Every review of a job's current result and what they say together (the fused
    labels, the keys still unresolved, the reviewers' agreement, whether they changed the
    model's result); ``fused`` is None before the first review."""

    job_id: int
    task: str | None
    model_name: str | None
    model_version: str | None
    result_digest: str | None
    needs_review: bool
    required: int  # reviews that settle a result when they agree
    settled: bool
    reviews: list[ReviewOut]
    fused: list[dict[str, Any]] | None
    unresolved: list[str]
    agreement: dict[str, Any] | None
    changed: bool | None


class AgreementOut(BaseModel):
    """Reviewer agreement over the settled results: overall, per reviewer and per task."""

    cases: int
    changed: int  # settled results the reviewers changed
    fleiss_kappa: float | None  # mean over results with two or more reviews
    cohen_kappa: float | None  # mean over reviewer pairs and results
    agreement: float | None  # share of labels where a reviewer said what the fusion says
    per_reviewer: list[dict[str, Any]]
    per_task: dict[str, dict[str, Any]]
