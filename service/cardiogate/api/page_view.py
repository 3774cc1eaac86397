"""What the status page shows, read from the store, the spool, the health probe and the
engine.

Job lines carry ids, tasks, states, the study date, modality and series, times, result
summaries with their lesions, the timeline and the link to the study in the viewer. The
study date is read from the series' first instance in the spool (the store keeps no dates),
and with ``status_page_show_patient`` its PatientName and PatientID too: they appear on
the page only, never in the API, a log line or a metric."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from cardiogate.api.deps import HealthProbe, ModelsProbe
from cardiogate.api.shadow import shadow_overview
from cardiogate.api.shadow_schemas import ShadowTaskOut
from cardiogate.api.thumbnail import key_image_path
from cardiogate.config import viewer_url
from cardiogate.dicom.spool import Spool
from cardiogate.errors import SpoolError
from cardiogate.learning.cases import SettledCase, settled_fused
from cardiogate.learning.promotion import PromotionRecord, history
from cardiogate.learning.selection import reviewed_jobs, yield_ratios
from cardiogate.store import Store
from cardiogate.store.events import JobEventRecord, timelines
from cardiogate.store.instances import first_instance_paths
from cardiogate.store.job_reads import jobs_page
from cardiogate.store.jobs import DELIVERED, FAILED, IGNORED, REPORTED, JobRecord
from cardiogate.store.outbox import Outbox, OutboxRow
from cardiogate.store.reviews import review_queue
from cardiogate.tasks import Task, Tasks

log = logging.getLogger(__name__)

RECENT_JOBS = 25
MAX_LESIONS = 10  # lesion lines shown per job; the others are counted
_DATE = re.compile(r"\d{8}")  # DA, YYYYMMDD (PS3.5 6.2)


@dataclass(frozen=True, slots=True)
class Header:
    """What the page reads from a series' first instance: StudyDate (YYYY-MM-DD), and
    PatientName and PatientID when the setting shows them."""

    study_date: str | None = None
    patient_name: str | None = None
    patient_id: str | None = None


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
    series_number: int | None = None
    series_description: str | None = None
    header: Header = Header()
    lesions: tuple[str, ...] = ()  # one line per lesion, the most important first
    timeline: tuple[JobEventRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelLine:
    task: str
    name: str
    version: str
    provider: str


RECENT_PROMOTIONS = 5


@dataclass(frozen=True, slots=True)
class StatusView:
    ready: bool
    checks: dict[str, bool]
    details: dict[str, str | int | float]
    models: list[ModelLine]
    jobs: list[JobLine]  # analysed: every state but ignored
    jobs_total: int
    review_total: int
    viewer: bool = False  # a viewer URL template is set
    ignored: tuple[JobLine, ...] = ()  # series not analysed, each with its reason
    ignored_total: int = 0
    show_patient: bool = False
    shadow: tuple[ShadowTaskOut, ...] = ()  # serving beside candidate models (shadow mode)
    reviews: ReviewLoopLine | None = None  # settled results, and what the reviewers changed
    promotions: tuple[PromotionRecord, ...] = ()  # the latest model changes, newest first


@dataclass(frozen=True, slots=True)
class ReviewLoopLine:
    """The learning loop's reviews: results settled, how many the reviewers changed, and
    each selection criterion's yield (share changed) with its count."""

    settled: int
    changed: int
    yields: dict[str, tuple[float, int]]


def review_loop(store: Store, settled: Sequence[SettledCase]) -> ReviewLoopLine | None:
    """The settled results' line for the page; None before any is settled."""
    jobs = reviewed_jobs(store, settled)
    if not jobs:
        return None
    pairs = [(j.criterion, j.changed) for j in jobs if j.criterion is not None]
    counts = {c: sum(1 for k, _ in pairs if k == c) for c, _ in pairs}
    return ReviewLoopLine(
        settled=len(jobs),
        changed=sum(j.changed for j in jobs),
        yields={c: (ratio, counts[c]) for c, ratio in sorted(yield_ratios(pairs).items())},
    )


def result_summary(task: Task | None, result: Mapping[str, Any]) -> str:
    """The task's one line for a result (calcium: total Agatston and categories; stenosis:
    the most severe lesion); empty for a task that is no longer installed."""
    return "" if task is None else task.summary(result)


def lesion_lines(task: Task | None, result: Mapping[str, Any]) -> tuple[str, ...]:
    """The task's lines, one per finding, most important first; at most MAX_LESIONS."""
    lines = [] if task is None else task.lesion_lines(result)
    if len(lines) > MAX_LESIONS:
        lines = [*lines[:MAX_LESIONS], f"and {len(lines) - MAX_LESIONS} more"]
    return tuple(lines)


def read_header(spool: Spool, path: str, patient: bool) -> Header:
    """StudyDate (and PatientName, PatientID when ``patient``) of a spool file; an empty
    header when the file is not here (another replica's spool) or not readable."""
    tags = ["SpecificCharacterSet", "StudyDate"] + (["PatientName", "PatientID"] if patient else [])
    try:
        ds = pydicom.dcmread(spool.absolute(path), stop_before_pixels=True, specific_tags=tags)
        date = str(ds.get("StudyDate") or "")
        name = str(ds.get("PatientName") or "") if patient else ""
        patient_id = str(ds.get("PatientID") or "") if patient else ""
    except (SpoolError, OSError, InvalidDicomError, ValueError):
        log.debug("status page: the first instance of a series is not readable here")
        return Header()
    return Header(
        study_date=f"{date[:4]}-{date[4:6]}-{date[6:]}" if _DATE.fullmatch(date) else None,
        patient_name=name or None,
        patient_id=patient_id or None,
    )


def _line(
    store: Store,
    tasks: Tasks,
    job: JobRecord,
    rows: list[OutboxRow],
    header: Header,
    events: list[JobEventRecord],
    viewer_url_template: str | None,
) -> JobLine:
    series = store.get_series(job.SeriesInstanceUID)
    result: dict[str, Any] = json.loads(job.result) if job.result else {}
    task = tasks.get(job.task or "")
    if job.state in (FAILED, IGNORED):
        summary = job.reason or job.state
    else:
        summary = result_summary(task, result) if result else ""
    return JobLine(
        id=job.id,
        task=job.task,
        state=job.state,
        modality=None if series is None else series.Modality,
        created_at=job.created_at,
        summary=summary,
        review=job.review_reason,
        has_key_image=key_image_path(rows) is not None,
        viewer_url=(
            viewer_url(viewer_url_template, job.StudyInstanceUID)
            if job.state in (REPORTED, DELIVERED)
            else None
        ),
        series_number=None if series is None else series.SeriesNumber,
        series_description=None if series is None else series.SeriesDescription,
        header=header,
        lesions=lesion_lines(task, result) if job.state in (REPORTED, DELIVERED) else (),
        timeline=tuple(events),
    )


def _lines(
    store: Store,
    tasks: Tasks,
    jobs: list[JobRecord],
    spool: Spool | None,
    show_patient: bool,
    viewer_url_template: str | None,
) -> list[JobLine]:
    """The page's lines of ``jobs``, with the batched reads (outbox rows, first instances,
    timelines) done once for all."""
    ids = [j.id for j in jobs]
    rows: dict[int, list[OutboxRow]] = {i: [] for i in ids}
    for row in Outbox(store).rows_of_jobs(ids):
        rows[row.job_id].append(row)
    paths = first_instance_paths(store, [j.SeriesInstanceUID for j in jobs]) if spool else {}
    events = timelines(store, ids)
    lines = []
    for job in jobs:
        path = paths.get(job.SeriesInstanceUID)
        header = (
            Header() if spool is None or path is None else read_header(spool, path, show_patient)
        )
        lines.append(
            _line(
                store, tasks, job, rows[job.id], header, events.get(job.id, []), viewer_url_template
            )
        )
    return lines


def collect(
    store: Store,
    health: HealthProbe,
    models: ModelsProbe,
    tasks: Tasks,
    limit: int = RECENT_JOBS,
    viewer_url_template: str | None = None,
    *,
    spool_dir: Path | None = None,
    show_patient: bool = False,
) -> StatusView:
    """What the page shows: the latest ``limit`` analysed jobs and the latest ``limit``
    series not analysed. With ``viewer_url_template``, each job with results links to its
    study in the viewer; with ``spool_dir``, each line has its study date (and with
    ``show_patient`` the patient's name and ID)."""
    checks, details = health.readiness()
    spool = None if spool_dir is None else Spool(spool_dir)
    analysed, total = jobs_page(store, limit, ignored=False)
    ignored, ignored_total = jobs_page(store, limit, ignored=True)
    _, waiting = review_queue(store, 1, 0)
    settled = settled_fused(store, tasks)  # fused once, for the review and shadow sections
    return StatusView(
        ready=all(checks.values()),
        checks=checks,
        details={k: v for k, v in details.items() if not k.startswith("model_")},
        models=[
            ModelLine(task, m.card.name, m.card.version, m.provider)
            for task, m in sorted(models.loaded_models().items())
        ],
        jobs=_lines(store, tasks, analysed, spool, show_patient, viewer_url_template),
        jobs_total=total,
        review_total=waiting,
        viewer=viewer_url_template is not None,
        ignored=tuple(_lines(store, tasks, ignored, spool, show_patient, None)),
        ignored_total=ignored_total,
        show_patient=show_patient,
        shadow=tuple(
            t for t in shadow_overview(store, models, settled).tasks if t.candidate is not None
        ),
        reviews=review_loop(store, settled),
        promotions=tuple(reversed(history(store)[-RECENT_PROMOTIONS:])),
    )
