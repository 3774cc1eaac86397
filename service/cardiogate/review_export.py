"""``cardiogate review export``: the verdicts as JSON lines, the training signal of the
active-learning loop. One line per verdict: the job's UIDs, task, the model and its output
that were judged, the reviewer (pseudonymous id), role, verdict, corrections and note, when
it was given, and whether that output is still the job's (``current``; a re-run may have
replaced it). No patient names or IDs.

With ``--dataset DIR`` it also writes a training set of the settled results:
``DIR/manifest.jsonl`` (one line per settled result: UIDs, task, model, the judged result,
its reviews, their fused labels and agreement, ``series_dir``), ``DIR/agreement.json``
(the reviewers' agreement over them all: overall, per reviewer and per task) and each
series' received instances, copied from the spool to ``DIR/series/<SeriesInstanceUID>/``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from cardiogate.dicom.spool import Spool
from cardiogate.errors import SpoolError
from cardiogate.learning.cases import agreement_by_task, judged_result, settled_fused
from cardiogate.store import Store
from cardiogate.store.reviews import ReviewRecord, reviewed
from cardiogate.tasks import Tasks

MANIFEST = "manifest.jsonl"
AGREEMENT = "agreement.json"  # over every settled result: overall, per reviewer, per task
SERIES = "series"


def _review(review: ReviewRecord) -> dict[str, Any]:
    return {
        "reviewer": review.reviewer,
        "role": review.role,
        "verdict": review.verdict,
        "corrections": review.corrections_json(),
        "reviewed_at": review.created_at.replace(tzinfo=UTC).isoformat(),
    }


def _write(out: Path, lines: list[str]) -> None:
    """Write whole, then rename over ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text("".join(lines), encoding="utf-8")
    partial.replace(out)


def export_reviews(store: Store, out: Path) -> int:
    """Write every verdict to ``out`` (JSON lines, oldest first); returns how many.
    ``result`` is the output the reviewer judged, even if a re-run has since replaced the
    job's. The file is written whole, then renamed over ``out``."""
    lines = []
    for job, review in reviewed(store):
        entry: dict[str, Any] = {
            "job_id": job.id,
            "StudyInstanceUID": job.StudyInstanceUID,
            "SeriesInstanceUID": job.SeriesInstanceUID,
            "task": job.task,
            "model_name": review.model_name,
            "model_version": review.model_version,
            "result": None if review.result is None else json.loads(review.result),
            "current": review.result_digest == job.result_digest,
            "note": review.note,
            **_review(review),
        }
        lines.append(json.dumps(entry, sort_keys=True) + "\n")
    _write(out, lines)
    return len(lines)


@dataclass(frozen=True, slots=True)
class DatasetExport:
    """What ``export_dataset`` wrote: settled results, files copied, files the spool no
    longer has (removed since; such a case is in the manifest with fewer files)."""

    cases: int
    files: int
    missing: int


def export_dataset(store: Store, spool: Spool, tasks: Tasks, out: Path) -> DatasetExport:
    """Write the settled results with their fused labels to ``out/manifest.jsonl`` and copy
    their series' instances from ``spool`` to ``out/series/<SeriesInstanceUID>/``."""
    lines = []
    files = missing = 0
    copied: set[str] = set()
    settled = settled_fused(store, tasks)
    for case in settled:
        job, reviews, fused = case.job, case.reviews, case.fused
        result = judged_result(reviews[0])
        series_dir = f"{SERIES}/{job.SeriesInstanceUID}"
        entry: dict[str, Any] = {
            "job_id": job.id,
            "StudyInstanceUID": job.StudyInstanceUID,
            "SeriesInstanceUID": job.SeriesInstanceUID,
            "task": job.task,
            "model_name": reviews[0].model_name,
            "model_version": reviews[0].model_version,
            "result_digest": reviews[0].result_digest,
            "current": reviews[0].result_digest == job.result_digest,
            "result": result,
            "reviews": [_review(r) for r in reviews],
            "fused": fused.as_dict(),
            "series_dir": series_dir,
        }
        lines.append(json.dumps(entry, sort_keys=True) + "\n")
        if job.SeriesInstanceUID in copied:
            continue
        copied.add(job.SeriesInstanceUID)
        target = out / series_dir
        target.mkdir(parents=True, exist_ok=True)
        for relative in store.instance_paths(job.SeriesInstanceUID):
            try:
                source = spool.absolute(relative)
            except SpoolError:
                missing += 1
                continue
            if not source.is_file():
                missing += 1
                continue
            shutil.copyfile(source, target / source.name)
            files += 1
    _write(out / MANIFEST, lines)
    agreement = agreement_by_task(settled)
    _write(out / AGREEMENT, [json.dumps(agreement, indent=2, sort_keys=True) + "\n"])
    return DatasetExport(len(lines), files, missing)
