"""Shadow mode in the worker: the candidate runs after the serving result is reported, on
the same input, its result is stored and compared and never built or sent; a disagreement
selects the job for review; a failing candidate leaves the job reported. The review
criterion is recorded with the serving result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from cardiogate.config import load_settings
from cardiogate.dicom.spool import Spool
from cardiogate.errors import CardiogateError
from cardiogate.inference import InferenceEngine, LoadedModel
from cardiogate.learning.shadow import shadow_of_job
from cardiogate.pipeline.worker import JobWorker
from cardiogate.store import InstanceRecord, Store
from cardiogate.store.jobs import JobQueue
from cardiogate.store.outbox import Outbox
from cardiogate.tasks import Analysed
from task_doubles import tasks_of
from tiny_model import write_model

REPO = Path(__file__).resolve().parents[3]
SERIES, STUDY = "1.2.3.1", "1.2.3"
PACS = {"ae_title": "PACS", "host": "127.0.0.1", "port": 104}


class Result(BaseModel):
    total: float
    needs_review: bool = False
    review_reason: str | None = None


def _sr(uid: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = "1.2.840.10008.5.1.4.1.1.88.11", uid, "SR"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, "1.2.9"
    return ds


def _instance() -> InstanceRecord:
    fields = dict.fromkeys(InstanceRecord.__dataclass_fields__)
    return InstanceRecord(  # type: ignore[arg-type]
        **{
            **fields,
            "StudyInstanceUID": STUDY,
            "SeriesInstanceUID": SERIES,
            "SOPInstanceUID": "1.2.3.1.1",
            "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
            "TransferSyntaxUID": ExplicitVRLittleEndian,
            "NumberOfFrames": 1,
            "path": "1.2.3/1.2.3.1/1.2.3.1.1.dcm",
            "size_bytes": 1,
        }
    )


class Run:
    """The analysis double: the total per model version, the objects it built."""

    def __init__(self, totals: dict[str, float | None], reason: str | None = None) -> None:
        self.totals, self.reason, self.built, self.models = totals, reason, [], []  # type: ignore[var-annotated]

    def __call__(self, paths: Any, model: LoadedModel, needed: Any) -> Analysed:
        self.models.append(model.card.version)
        total = self.totals[model.card.version]
        if total is None:
            raise CardiogateError("the candidate cannot read this series")
        result = Result(
            total=total, needs_review=self.reason is not None, review_reason=self.reason
        )

        def objects(**version: Any) -> list[Dataset]:
            self.built.append(model.card.version)
            return [_sr(f"1.2.9.{len(self.built)}")]

        return Analysed(result, objects)


def _worker(tmp_path: Path, run: Run, **settings: Any) -> JobWorker:
    models = tmp_path / "models"
    write_model(models / "calcium")
    candidate = write_model(models / "candidates" / "calcium")
    card = (candidate / "card.json").read_text().replace('"0.0.1"', '"0.0.2"')
    (candidate / "card.json").write_text(card)
    s = load_settings(data_dir=tmp_path, destinations=[PACS], models_dir=models, **settings)
    store = Store(s.effective_database_url)
    store.create_schema()
    store.record_instance(_instance())
    engine = InferenceEngine.from_directory(models, candidates_dir=s.candidates_path)
    worker = JobWorker(s, store, Spool(s.spool_dir), engine, tasks=tasks_of(calcium=run))
    worker.outbox_files.prepare()
    JobQueue(store).enqueue(SERIES, STUDY, "calcium")
    return worker


def _row(worker: JobWorker) -> tuple[Any, ...]:
    with worker.store.transaction() as conn:
        return tuple(
            conn.exec_driver_sql(
                "SELECT id, state, needs_review, review_reason, review_criterion FROM jobs"
            ).one()
        )


def _runs(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "cardiogate_shadow_runs_total", {"task": "calcium", "outcome": outcome}
    )
    return value or 0.0


def test_an_agreeing_candidate_is_stored_compared_and_never_built(tmp_path: Path) -> None:
    run = Run({"0.0.1": 12.5, "0.0.2": 12.5})
    worker = _worker(tmp_path, run)
    before = _runs("agree")
    assert worker.run_once()
    job_id, state, needs_review, _, criterion = _row(worker)
    assert (state, needs_review, criterion) == ("reported", 0, None)
    assert run.models == ["0.0.1", "0.0.2"]  # serving, then the candidate on the same input
    assert run.built == ["0.0.1"]  # the candidate's objects are never built
    assert len(Outbox(worker.store).rows_of_job(job_id)) == 1
    [shadow] = shadow_of_job(worker.store, job_id)
    assert (shadow.model_name, shadow.model_version) == ("tiny-calcium", "0.0.2")
    assert shadow.result["total"] == 12.5
    assert shadow.agree
    assert _runs("agree") == before + 1
    agreement = REGISTRY.get_sample_value(
        "cardiogate_shadow_agreement_ratio", {"task": "calcium", "candidate_version": "0.0.2"}
    )
    assert agreement == 1.0


def test_a_disagreeing_candidate_selects_the_job_for_review(tmp_path: Path) -> None:
    worker = _worker(tmp_path, Run({"0.0.1": 12.5, "0.0.2": 80.0}))
    assert worker.run_once()
    job_id, state, needs_review, reason, criterion = _row(worker)
    assert (state, needs_review, criterion) == ("reported", 1, "shadow_disagreement")
    assert reason == "the candidate model disagrees: tiny-calcium 0.0.2: results differ"
    [shadow] = shadow_of_job(worker.store, job_id)
    assert not shadow.agree


def test_without_a_budget_left_a_disagreement_is_not_selected(tmp_path: Path) -> None:
    worker = _worker(
        tmp_path, Run({"0.0.1": 12.5, "0.0.2": 80.0}), review_strategy={"daily_budget": 0}
    )
    assert worker.run_once()
    assert _row(worker)[1:] == ("reported", 0, None, None)


def test_a_failing_candidate_is_counted_and_the_job_stays_reported(tmp_path: Path) -> None:
    worker = _worker(tmp_path, Run({"0.0.1": 12.5, "0.0.2": None}))
    before = _runs("failed")
    assert worker.run_once()
    job_id, state, needs_review, _, _ = _row(worker)
    assert (state, needs_review) == ("reported", 0)
    assert shadow_of_job(worker.store, job_id) == []
    assert _runs("failed") == before + 1


@pytest.mark.parametrize(
    ("strategy", "criterion"),
    [({}, "uncertainty"), ({"uncertainty": False}, None)],
)
def test_the_serving_results_criterion_is_recorded_with_it(
    tmp_path: Path, strategy: dict[str, Any], criterion: str | None
) -> None:
    run = Run({"0.0.1": 12.5, "0.0.2": 12.5}, reason="1 lesion(s) with a peak below 150 HU")
    worker = _worker(tmp_path, run, review_strategy=strategy)
    assert worker.run_once()
    _, state, needs_review, reason, recorded = _row(worker)
    assert (state, recorded) == ("reported", criterion)
    assert needs_review == (criterion is not None)
    assert reason == ("1 lesion(s) with a peak below 150 HU" if criterion else None)


@pytest.mark.slow
def test_the_shipped_calcium_model_in_shadow_of_itself_agrees(tmp_path: Path) -> None:
    """The real calcium task on a phantom scan, with a copy of the shipped model as the
    candidate: the same weights give the same score, stored beside the job's."""
    from cardiogate_phantoms import make_ct_series

    models = tmp_path / "models"
    shutil.copytree(REPO / "models" / "calcium", models / "calcium")
    shutil.copytree(REPO / "models" / "calcium", models / "candidates" / "calcium")
    card = json.loads((models / "candidates" / "calcium" / "card.json").read_text())
    (models / "candidates" / "calcium" / "card.json").write_text(
        json.dumps({**card, "version": "0.2.0-copy"})
    )
    s = load_settings(data_dir=tmp_path, models_dir=models)
    store = Store(s.effective_database_url)
    store.create_schema()
    series = make_ct_series(11, n_slices=24, rows=256, columns=256)
    for ds in series.datasets:
        relative = f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
        (s.spool_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(s.spool_dir / relative, enforce_file_format=True)
        fields = dict.fromkeys(InstanceRecord.__dataclass_fields__)
        store.record_instance(
            InstanceRecord(  # type: ignore[arg-type]
                **{
                    **fields,
                    "StudyInstanceUID": ds.StudyInstanceUID,
                    "SeriesInstanceUID": ds.SeriesInstanceUID,
                    "SOPInstanceUID": ds.SOPInstanceUID,
                    "SOPClassUID": ds.SOPClassUID,
                    "TransferSyntaxUID": ds.file_meta.TransferSyntaxUID,
                    "NumberOfFrames": 1,
                    "path": relative,
                    "size_bytes": 1,
                }
            )
        )
    engine = InferenceEngine.from_directory(models, candidates_dir=s.candidates_path)
    worker = JobWorker(s, store, Spool(s.spool_dir), engine)
    uid = series.datasets[0].SeriesInstanceUID
    JobQueue(store).enqueue(uid, series.datasets[0].StudyInstanceUID, "calcium")
    assert worker.run_once()
    job = worker.jobs.for_series(uid)
    assert job is not None
    assert job.state == "reported"
    [shadow] = shadow_of_job(store, job.id)
    assert shadow.model_version == "0.2.0-copy"
    assert shadow.agree
    served = json.loads(job.result or "{}")
    assert shadow.result["agatston"] == served["agatston"]
    assert shadow.result["model"]["version"] == "0.2.0-copy"
    assert served["model"]["version"] == card["version"]
    assert shadow.comparison["difference"]["agatston_total"] == 0.0
    store.dispose()
