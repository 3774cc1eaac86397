"""What the status page shows, read from the store, the health probe and the engine.

Job lines carry ids, tasks, states, modalities, times, result summaries and the link to the
study in the viewer: never patient names, IDs or birth dates (the store holds none of them
anyway)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cardiogate.api.deps import HealthProbe, ModelsProbe
from cardiogate.api.thumbnail import key_image_path
from cardiogate.config import viewer_url
from cardiogate.store import Store
from cardiogate.store.jobs import DELIVERED, FAILED, IGNORED, REPORTED, JobQueue, JobRecord
from cardiogate.store.outbox import Outbox
from cardiogate.store.reviews import review_queue

RECENT_JOBS = 25


@dataclass(frozen=True, slots=True)
class JobLine:
    id: int
    task: str | None
    state: str
    modality: str | None
    created_at: datetime
    summary: str
    review: str | None  # why the result needs a reviewer
    has_key_image: bool
    viewer_url: str | None = None  # its study in the viewer, once its results are written


@dataclass(frozen=True, slots=True)
class ModelLine:
    task: str
    name: str
    version: str
    provider: str


@dataclass(frozen=True, slots=True)
class StatusView:
    ready: bool
    checks: dict[str, bool]
    details: dict[str, str | int | float]
    models: list[ModelLine]
    jobs: list[JobLine]
    jobs_total: int
    review_total: int
    viewer: bool = False  # a viewer URL template is set


def result_summary(task: str | None, result: Mapping[str, Any]) -> str:
    """One line: calcium total Agatston with its categories; stenosis the most severe
    lesion's percent diameter stenosis and grade, or that none was found."""
    if task == "calcium":
        total = (result.get("agatston") or {}).get("total")
        category = result.get("category") or {}
        if total is None:
            return "no score"
        return (
            f"Agatston {float(total):.1f} (classic {category.get('classic', '?')}, "
            f"CAC-DRS {category.get('cac_drs', '?')})"
        )
    if task == "stenosis":
        worst = result.get("most_severe")
        if not worst:
            return f"no stenosis found (p = {float(result.get('probability') or 0.0):.2f})"
        return (
            f"max {float(worst.get('percent_stenosis') or 0.0):.0f}% DS, grade "
            f"{worst.get('grade', '?')}, CAD-RADS {worst.get('cad_rads', '?')}"
        )
    return ""


def _line(store: Store, outbox: Outbox, job: JobRecord, viewer_url_template: str | None) -> JobLine:
    series = store.get_series(job.SeriesInstanceUID)
    result: dict[str, Any] = json.loads(job.result) if job.result else {}
    if job.state in (FAILED, IGNORED):
        summary = job.reason or job.state
    else:
        summary = result_summary(job.task, result) if result else ""
    return JobLine(
        id=job.id,
        task=job.task,
        state=job.state,
        modality=None if series is None else series.Modality,
        created_at=job.created_at,
        summary=summary,
        review=job.review_reason,
        has_key_image=key_image_path(outbox.rows_of_job(job.id)) is not None,
        viewer_url=(
            viewer_url(viewer_url_template, job.StudyInstanceUID)
            if job.state in (REPORTED, DELIVERED)
            else None
        ),
    )


def collect(
    store: Store,
    health: HealthProbe,
    models: ModelsProbe,
    limit: int = RECENT_JOBS,
    viewer_url_template: str | None = None,
) -> StatusView:
    """What the page shows; with ``viewer_url_template``, each job with results links to
    its study in the viewer."""
    checks, details = health.readiness()
    jobs, total = JobQueue(store).page(limit, 0)
    outbox = Outbox(store)
    _, waiting = review_queue(store, 1, 0)
    return StatusView(
        ready=all(checks.values()),
        checks=checks,
        details={k: v for k, v in details.items() if not k.startswith("model_")},
        models=[
            ModelLine(task, m.card.name, m.card.version, m.provider)
            for task, m in sorted(models.loaded_models().items())
        ],
        jobs=[_line(store, outbox, job, viewer_url_template) for job in jobs],
        jobs_total=total,
        review_total=waiting,
        viewer=viewer_url_template is not None,
    )
