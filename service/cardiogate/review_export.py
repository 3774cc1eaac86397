"""``cardiogate review export``: the verdicts as JSON lines, the training signal of the
active-learning loop. One line per verdict: the job's UIDs, task, the model and its output
that were judged, the verdict, the note, when it was given, and whether that output is
still the job's (``current``; a re-run may have replaced it). No patient names or IDs."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

from cardiogate.store import Store
from cardiogate.store.reviews import reviewed


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
            "verdict": review.verdict,
            "note": review.note,
            "reviewed_at": review.created_at.replace(tzinfo=UTC).isoformat(),
        }
        lines.append(json.dumps(entry, sort_keys=True) + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text("".join(lines), encoding="utf-8")
    partial.replace(out)
    return len(lines)
