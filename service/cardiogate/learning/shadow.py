"""Shadow mode: a candidate model runs beside the serving one on the same series, and its
result is stored and compared, never sent.

After a job's serving result is reported, the worker calls :func:`run_shadow` when the
engine has a candidate for the task (``<candidates_dir>/<task>/``). The candidate's result
goes to ``shadow_results`` with its comparison (:meth:`~cardiogate.tasks.Task.compare`);
its DICOM objects are never built, staged or sent. A candidate that fails is logged and
counted (``cardiogate_shadow_runs_total{outcome="failed"}``) and never fails the job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table, and_, delete, func, select

from cardiogate.config import ReviewStrategy
from cardiogate.errors import CardiogateError
from cardiogate.inference import LoadedModel
from cardiogate.learning import selection as selection_rules
from cardiogate.learning.cases import settled_fused
from cardiogate.learning.promotion import history
from cardiogate.metrics import MODEL_PROMOTIONS, SHADOW_AGREEMENT, SHADOW_RUNS
from cardiogate.store import Store
from cardiogate.store.records import JobRecord
from cardiogate.store.reviews import result_digest
from cardiogate.store.store import utcnow
from cardiogate.store.tables import ShadowResult
from cardiogate.tasks import Tasks
from cardiogate.tasks.contract import Comparison, Outcome, Task

log = logging.getLogger(__name__)

_shadow: Table = ShadowResult.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ShadowRecord:
    """A stored candidate result and its comparison with the serving one."""

    job_id: int
    task: str
    model_name: str
    model_version: str
    result: dict[str, Any]
    comparison: dict[str, Any]  # agree, difference, summary
    created_at: datetime

    @property
    def agree(self) -> bool:
        return bool(self.comparison.get("agree"))


def _record(row: Any) -> ShadowRecord:
    def parsed(text: str) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    return ShadowRecord(
        row.job_id,
        row.task,
        row.model_name,
        row.model_version,
        parsed(row.result),
        parsed(row.comparison),
        row.created_at,
    )


def record_shadow(
    store: Store, job_id: int, task: str, model: tuple[str, str], result_json: str, c: Comparison
) -> None:
    """Store the candidate's result on the job (``model``: its name and version), replacing
    an earlier run of that version."""
    name, version = model
    with store.transaction() as conn:
        conn.execute(
            delete(_shadow).where(_shadow.c.job_id == job_id, _shadow.c.model_version == version)
        )
        conn.execute(
            _shadow.insert().values(
                job_id=job_id,
                task=task,
                model_name=name,
                model_version=version,
                result=result_json,
                result_digest=result_digest(result_json),
                comparison=json.dumps(c.as_dict()),
                created_at=utcnow(),
            )
        )


def shadow_of_job(store: Store, job_id: int) -> list[ShadowRecord]:
    """The candidate results of a job, newest first."""
    query = (
        select(_shadow)
        .where(_shadow.c.job_id == job_id)
        .order_by(_shadow.c.created_at.desc(), _shadow.c.id.desc())
    )
    with store.transaction() as conn:
        return [_record(r) for r in conn.execute(query)]


def shadow_records(store: Store, task: str, model_version: str) -> list[ShadowRecord]:
    """Every stored run of one candidate version, oldest first."""
    query = (
        select(_shadow)
        .where(_shadow.c.task == task, _shadow.c.model_version == model_version)
        .order_by(_shadow.c.id)
    )
    with store.transaction() as conn:
        return [_record(r) for r in conn.execute(query)]


def latest_candidates(store: Store) -> dict[str, tuple[str, str]]:
    """Per task, the (name, version) of the candidate that ran last."""
    last = (
        select(_shadow.c.task, func.max(_shadow.c.id).label("id")).group_by(_shadow.c.task)
    ).subquery()
    query = select(_shadow.c.task, _shadow.c.model_name, _shadow.c.model_version).join(
        last, and_(_shadow.c.task == last.c.task, _shadow.c.id == last.c.id)
    )
    with store.transaction() as conn:
        return {row.task: (row.model_name, row.model_version) for row in conn.execute(query)}


def agreement_ratio(store: Store, task: str, model_version: str) -> float | None:
    """The share of a candidate version's stored runs that agree with serving."""
    records = shadow_records(store, task, model_version)
    if not records:
        return None
    return sum(r.agree for r in records) / len(records)


def run_shadow(
    store: Store,
    task: Task,
    candidate: LoadedModel,
    job_id: int,
    paths: Sequence[Path],
    needed: Mapping[str, BaseModel],
    serving: Mapping[str, Any],
) -> Comparison | None:
    """Run ``candidate`` on the job's series with the same ``needed`` results, store its
    result and comparison with the ``serving`` result (JSON), count it; None when the
    candidate failed (logged and counted, the job unaffected)."""
    version = candidate.card.version
    try:
        analysed = task.analyse(paths, candidate, needed)
        result_json = analysed.result.model_dump_json()
        comparison = task.compare(serving, analysed.result.model_dump(mode="json"))
        model = (candidate.card.name, version)
        record_shadow(store, job_id, task.name, model, result_json, comparison)
    except CardiogateError as e:
        SHADOW_RUNS.labels(task.name, "failed").inc()
        log.warning("job %d: candidate %s %s failed: %s", job_id, candidate.card.name, version, e)
        return None
    except Exception:  # the guard: a candidate's bug never fails the job nor the worker
        SHADOW_RUNS.labels(task.name, "failed").inc()
        log.exception("job %d: candidate %s %s failed", job_id, candidate.card.name, version)
        return None
    SHADOW_RUNS.labels(task.name, "agree" if comparison.agree else "disagree").inc()
    ratio = agreement_ratio(store, task.name, version)
    if ratio is not None:
        SHADOW_AGREEMENT.labels(task.name, version).set(ratio)
    log.info(
        "job %d: candidate %s %s %s serving: %s",
        job_id,
        candidate.card.name,
        version,
        "agrees with" if comparison.agree else "DISAGREES with",
        comparison.summary,
    )
    return comparison


def shadow_and_select(
    store: Store,
    strategy: ReviewStrategy,
    candidate: LoadedModel,
    job: JobRecord,
    outcome: Outcome,
    paths: Sequence[Path],
) -> Comparison | None:
    """:func:`run_shadow` on a reported job (``outcome``: its serving run, on ``paths``,
    with the results it needed) and, when the candidate disagrees and the job is not
    flagged yet, select it for review (``shadow_disagreement``) within the budget."""
    task, serving_json = outcome.task, outcome.analysed.result.model_dump_json()
    serving = json.loads(serving_json)
    comparison = run_shadow(store, task, candidate, job.id, paths, outcome.needed, serving)
    if comparison is None or comparison.agree or not strategy.shadow_disagreement:
        return comparison
    selection = selection_rules.decide(
        strategy,
        review_reason=None,
        key=job.SeriesInstanceUID,
        selected_today=selection_rules.selected_today(store, utcnow(), job.id),
        disagreement=f"{candidate.card.name} {candidate.card.version}: {comparison.summary}",
    )
    if selection.criterion == "shadow_disagreement":
        if selection_rules.flag_later(store, job.id, result_digest(serving_json), selection):
            selection_rules.count(task.name, selection)
    elif selection.over_budget is not None:
        selection_rules.count(task.name, selection)
    return comparison


def publish_learning_metrics(store: Store, tasks: Tasks) -> None:
    """At start-up: the promotions recorded (``cardiogate_model_promotions_total``; a
    promotion takes effect at restart), each candidate's agreement so far and each review
    criterion's yield, from the store."""
    for record in history(store):
        MODEL_PROMOTIONS.labels(record.task, record.action).inc()
    for task, (_, version) in latest_candidates(store).items():
        ratio = agreement_ratio(store, task, version)
        if ratio is not None:
            SHADOW_AGREEMENT.labels(task, version).set(ratio)
    selection_rules.publish_yields(store, settled_fused(store, tasks))
