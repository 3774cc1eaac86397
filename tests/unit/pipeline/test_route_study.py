"""Routing a study's reconstructions through the worker and a real store: as series
complete one after another, the calcium task keeps the one its rule prefers, a loser still
queued is turned into ignored, and a loser already running is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardiogate.config import load_settings
from cardiogate.dicom.spool import Spool
from cardiogate.errors import NotAnalysableError
from cardiogate.inference import InferenceEngine
from cardiogate.inference.engine import load_model
from cardiogate.pipeline.worker import JobWorker
from cardiogate.store import Store
from cardiogate.store.events import timeline
from cardiogate.store.jobs import IGNORED, QUEUED, RUNNING, JobQueue
from cardiogate.tasks import Analysed, Tasks
from cardiogate.tasks.calcium import CalciumTask
from store_records import record_ct_series
from tiny_model import write_threshold_model

STUDY = "1.2.826.0.1.7"
CHOSEN = "another reconstruction of this study is scored: series 3, 3 mm"


@pytest.fixture
def worker(tmp_path: Path) -> JobWorker:
    settings = load_settings(data_dir=tmp_path, routing={"calcium_slice_thickness_mm": (0.5, 3.5)})
    store = Store(settings.effective_database_url)
    store.create_schema()
    engine = InferenceEngine({"calcium": load_model(write_threshold_model(tmp_path / "model"))})
    return JobWorker(settings, store, Spool(settings.spool_dir), engine)


def _receive(worker: JobWorker, series: str, number: int, thickness: str) -> str:
    return record_ct_series(worker.store, STUDY, series, number, thickness)


def _state(worker: JobWorker, series: str) -> tuple[str | None, str | None]:
    job = worker.jobs.for_series(series)
    assert job is not None
    return job.state, job.reason


def test_the_standard_reconstruction_replaces_a_queued_thinner_one(worker: JobWorker) -> None:
    thin = _receive(worker, "1.2.826.0.1.7.4", 4, "2.5")
    worker.route_completed([thin])
    assert _state(worker, thin) == (QUEUED, None)

    standard = _receive(worker, "1.2.826.0.1.7.3", 3, "3")
    worker.route_completed([standard])
    assert _state(worker, standard) == (QUEUED, None)
    assert _state(worker, thin) == (IGNORED, CHOSEN)
    job = worker.jobs.for_series(thin)
    assert job is not None
    assert job.task is None
    assert [e.event for e in timeline(worker.store, job.id)] == ["queued", "ignored"]
    assert timeline(worker.store, job.id)[-1].detail == CHOSEN

    sub_mm = _receive(worker, "1.2.826.0.1.7.5", 5, "0.6")  # the window allows it here
    worker.route_completed([sub_mm])
    assert _state(worker, sub_mm) == (IGNORED, CHOSEN)
    assert _state(worker, standard) == (QUEUED, None)


def test_reconstructions_completing_together_keep_one(worker: JobWorker) -> None:
    series = [
        _receive(worker, "1.2.826.0.1.7.4", 4, "2.5"),
        _receive(worker, "1.2.826.0.1.7.3", 3, "3"),
        _receive(worker, "1.2.826.0.1.7.5", 5, "1"),
    ]
    worker.route_completed(series)
    assert [_state(worker, uid) for uid in series] == [
        (IGNORED, CHOSEN),
        (QUEUED, None),
        (IGNORED, CHOSEN),
    ]


def test_a_running_loser_is_left_alone(worker: JobWorker) -> None:
    thin = _receive(worker, "1.2.826.0.1.7.4", 4, "2.5")
    worker.route_completed([thin])
    claimed = JobQueue(worker.store).claim()
    assert claimed is not None
    assert claimed.SeriesInstanceUID == thin

    standard = _receive(worker, "1.2.826.0.1.7.3", 3, "3")
    worker.route_completed([standard])
    assert _state(worker, standard) == (QUEUED, None)
    assert _state(worker, thin) == (RUNNING, None)  # its result will stand
    assert not worker.jobs.ignore_queued(thin, CHOSEN)


def test_the_study_query_gives_each_series_with_its_job(worker: JobWorker) -> None:
    thin = _receive(worker, "1.2.826.0.1.7.4", 4, "2.5")
    _receive(worker, "1.2.826.0.1.7.3", 3, "3")
    worker.route_completed([thin])
    rows = worker.store.series_of_study_with_jobs(STUDY)
    assert [(r.SeriesNumber, r.task, r.job_state) for r in rows] == [
        (3, None, None),
        (4, "calcium", QUEUED),
    ]
    assert [r.attributes.SliceThickness for r in rows] == ["3", "2.5"]
    assert [r.attributes.instance_count for r in rows] == [12, 12]
    assert worker.store.series_of_study_with_jobs("1.2.826.0.1.8") == []


def test_when_the_chosen_one_is_not_analysable_the_passed_over_ones_are_routed_again(
    worker: JobWorker,
) -> None:
    """A CTA whose header said nothing can win the choice (3 mm) and then be found
    contrast-enhanced by its pixels: the calcium series it displaced gets routed again, so
    the study still gets its score."""
    cta = _receive(worker, "1.2.826.0.1.7.3", 3, "3")
    thin = _receive(worker, "1.2.826.0.1.7.4", 4, "2.5")
    worker.route_completed([cta, thin])
    assert _state(worker, thin) == (IGNORED, CHOSEN)
    reason = "not scored: contrast-enhanced (blood pool median 320 HU over 40 mL)"

    class ContrastEnhanced(CalciumTask):  # what the blood-pool check raises
        def analyse(self, *_: object) -> Analysed:  # type: ignore[override]
            raise NotAnalysableError(reason)

    calcium = worker.tasks["calcium"]
    worker.tasks = Tasks([ContrastEnhanced(calcium.settings, calcium.routing)])
    assert worker.run_once()
    assert _state(worker, cta) == (IGNORED, reason)
    assert _state(worker, thin) == (QUEUED, None)
    job = worker.jobs.for_series(thin)
    assert job is not None
    last = timeline(worker.store, job.id)[-1]
    assert (last.event, last.detail) == (
        "re-queued",
        f"the series chosen instead was not analysable: {reason}; "
        "non-contrast axial CT, 2.5 mm slices",
    )
