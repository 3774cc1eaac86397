"""Response schemas of shadow mode and model promotions (``/api/v1/shadow``). Job ids and
model names only: no patient data, no UIDs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from cardiogate.api.schemas import UtcTimestamps


class ModelRef(BaseModel):
    name: str
    version: str


class PromotionOut(UtcTimestamps):
    action: str = Field(description="promote or rollback")
    from_version: str | None
    to_version: str
    by: str = Field(description="who did it: a pseudonymous id")
    note: str
    created_at: datetime


class ShadowTaskOut(BaseModel):
    """A task's serving model, its candidate in shadow and how they compare."""

    task: str
    serving: ModelRef | None = Field(description="the model whose results are sent")
    candidate: ModelRef | None = Field(
        description="the candidate loaded now, else the one that ran last"
    )
    candidate_loaded: bool = Field(description="the candidate runs on new jobs now")
    runs: int = Field(description="stored runs of this candidate version")
    agreement_ratio: float | None = Field(description="share of runs that agree with serving")
    mean_abs_difference: dict[str, float] = Field(
        description="mean |candidate - serving| of each of the task's measures"
    )
    disagreements: list[int] = Field(description="ids of the jobs it disagreed on, newest first")
    changed_by_reviewers: list[int] = Field(
        description="of those, the jobs whose result reviewers changed: changes the candidate "
        "would have flagged"
    )
    promotions: list[PromotionOut] = Field(description="promotions and rollbacks, oldest first")


class ShadowOut(BaseModel):
    tasks: list[ShadowTaskOut]


class ShadowRunOut(UtcTimestamps):
    model_name: str
    model_version: str
    agree: bool
    difference: dict[str, float]
    summary: str
    result: dict[str, Any] = Field(description="the candidate's result; never sent")
    created_at: datetime


class JobShadowOut(BaseModel):
    job_id: int
    task: str | None
    serving: ModelRef | None = Field(description="the model of the job's reported result")
    runs: list[ShadowRunOut] = Field(description="candidate runs on this job, newest first")
