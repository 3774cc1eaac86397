"""Shadow mode routes under ``/api/v1``: per task, the serving model beside its candidate
(runs, agreement, mean differences, the jobs they disagreed on, promotions), and one job's
candidate runs (:mod:`cardiogate.learning.shadow`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from fastapi import APIRouter, Depends, HTTPException, status

from cardiogate.api.deps import (
    JobIdPath,
    ModelsDep,
    ModelsProbe,
    StoreDep,
    TasksDep,
    require_token,
)
from cardiogate.api.errors import error_responses
from cardiogate.api.shadow_schemas import (
    JobShadowOut,
    ModelRef,
    PromotionOut,
    ShadowOut,
    ShadowRunOut,
    ShadowTaskOut,
)
from cardiogate.inference.engine import LoadedModel
from cardiogate.learning.cases import SettledCase, settled_fused
from cardiogate.learning.promotion import history
from cardiogate.learning.selection import reviewed_jobs
from cardiogate.learning.shadow import latest_candidates, shadow_of_job, shadow_records
from cardiogate.store import Store
from cardiogate.store.jobs import JobQueue

MAX_LISTED = 100  # job ids listed per task

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_token)],
    tags=["shadow"],
    responses=error_responses(401, 422),
)


@runtime_checkable
class CandidatesProbe(Protocol):
    """A models probe that also knows the candidate models loaded in shadow."""

    def candidate_models(self) -> Mapping[str, LoadedModel]: ...


def _candidates_loaded(models: ModelsProbe) -> Mapping[str, LoadedModel]:
    return models.candidate_models() if isinstance(models, CandidatesProbe) else {}


def shadow_overview(store: Store, models: ModelsProbe, settled: Sequence[SettledCase]) -> ShadowOut:
    """Every task with a serving model, a candidate run or a promotion; ``settled``: the
    settled results (:func:`~cardiogate.learning.cases.settled_fused`), for the disagreements
    reviewers changed."""
    serving = models.loaded_models()
    loaded = _candidates_loaded(models)
    last_run = latest_candidates(store)
    promotions: dict[str, list[PromotionOut]] = defaultdict(list)
    for p in history(store):
        promotions[p.task].append(
            PromotionOut(
                action=p.action,
                from_version=p.from_version,
                to_version=p.to_version,
                by=p.by,
                note=p.note,
                created_at=p.created_at,
            )
        )
    changed = {j.job_id for j in reviewed_jobs(store, settled) if j.changed}
    rows = []
    for task in sorted({*serving, *loaded, *last_run, *promotions}):
        if task in loaded:
            candidate: ModelRef | None = ModelRef(
                name=loaded[task].card.name, version=loaded[task].card.version
            )
        elif task in last_run:
            candidate = ModelRef(name=last_run[task][0], version=last_run[task][1])
        else:
            candidate = None
        runs = [] if candidate is None else shadow_records(store, task, candidate.version)
        differences: dict[str, list[float]] = defaultdict(list)
        for run in runs:
            for key, value in (run.comparison.get("difference") or {}).items():
                differences[key].append(abs(float(value)))
        disagreements = [r.job_id for r in reversed(runs) if not r.agree][:MAX_LISTED]
        model = serving.get(task)
        rows.append(
            ShadowTaskOut(
                task=task,
                serving=None
                if model is None
                else ModelRef(name=model.card.name, version=model.card.version),
                candidate=candidate,
                candidate_loaded=task in loaded,
                runs=len(runs),
                agreement_ratio=sum(r.agree for r in runs) / len(runs) if runs else None,
                mean_abs_difference={k: sum(v) / len(v) for k, v in sorted(differences.items())},
                disagreements=disagreements,
                changed_by_reviewers=[j for j in disagreements if j in changed],
                promotions=promotions[task],
            )
        )
    return ShadowOut(tasks=rows)


@router.get("/shadow", response_model=ShadowOut)
def get_shadow(store: StoreDep, models: ModelsDep, tasks: TasksDep) -> ShadowOut:
    """Per task: the serving model and its candidate in shadow mode (candidates' results are
    stored and compared, never sent), their agreement, and the promotions history."""
    return shadow_overview(store, models, settled_fused(store, tasks))


@router.get("/jobs/{job_id}/shadow", response_model=JobShadowOut, responses=error_responses(404))
def get_job_shadow(job_id: JobIdPath, store: StoreDep) -> JobShadowOut:
    """A job's candidate runs: each candidate's result (never sent) and its comparison with
    the serving result."""
    job = JobQueue(store).get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job")
    serving = (
        ModelRef(name=job.model_name, version=job.model_version)
        if job.model_name and job.model_version
        else None
    )
    runs = [
        ShadowRunOut(
            model_name=r.model_name,
            model_version=r.model_version,
            agree=r.agree,
            difference={k: float(v) for k, v in (r.comparison.get("difference") or {}).items()},
            summary=str(r.comparison.get("summary") or ""),
            result=r.result,
            created_at=r.created_at,
        )
        for r in shadow_of_job(store, job_id)
    ]
    return JobShadowOut(job_id=job.id, task=job.task, serving=serving, runs=runs)
