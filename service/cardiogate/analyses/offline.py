"""``cardiogate analyze``: the service's analysis of DICOM files in a folder, offline.

Files are grouped by series and each series is routed by the same rules as in the service;
a routed series is analysed with the same models, an ignored one reports why.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from cardiogate.config import Settings
from cardiogate.dicom.ingest import header_text
from cardiogate.errors import CardiogateError, NotAnalysableError
from cardiogate.inference import InferenceEngine
from cardiogate.pipeline.router import route
from cardiogate.pipeline.worker import ANALYSES
from cardiogate.store.records import SeriesAttributes


def find_series(root: Path) -> dict[str, tuple[SeriesAttributes, list[Path]]]:
    """DICOM files under ``root`` (recursively), grouped by SeriesInstanceUID."""
    files: dict[str, list[Path]] = defaultdict(list)
    headers: dict[str, Any] = {}
    candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in candidates:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError):
            continue
        uid = header_text(ds, "SeriesInstanceUID")
        if uid:
            files[uid].append(path)
            headers.setdefault(uid, ds)
    found = {}
    for uid, paths in files.items():
        ds = headers[uid]
        attributes = SeriesAttributes(
            SeriesInstanceUID=uid,
            StudyInstanceUID=header_text(ds, "StudyInstanceUID") or "",
            Modality=header_text(ds, "Modality", 16),
            SOPClassUID=header_text(ds, "SOPClassUID"),
            SeriesDescription=header_text(ds, "SeriesDescription"),
            ProtocolName=header_text(ds, "ProtocolName"),
            BodyPartExamined=header_text(ds, "BodyPartExamined", 16),
            ImageType=header_text(ds, "ImageType", 256),
            ContrastBolusAgent=header_text(ds, "ContrastBolusAgent"),
            SliceThickness=header_text(ds, "SliceThickness", 16),
            instance_count=len(paths),
        )
        found[uid] = (attributes, paths)
    return found


def analyze_folder(root: Path, settings: Settings, engine: InferenceEngine) -> list[dict[str, Any]]:
    """One entry per series: the task's result, or ``ignored``/``failed`` with a reason."""
    tasks = {t for t in engine.models if t in ANALYSES}
    entries: list[dict[str, Any]] = []
    for uid, (attributes, paths) in find_series(root).items():
        decision = route(attributes, settings.routing, tasks)
        entry: dict[str, Any] = {"SeriesInstanceUID": uid, "instances": len(paths)}
        if decision.task is None:
            entries.append({**entry, "task": None, "state": "ignored", "reason": decision.reason})
            continue
        try:
            result = ANALYSES[decision.task](paths, engine.get(decision.task), settings).result
        except NotAnalysableError as e:  # valid, but not what the task is made for
            entries.append({**entry, "task": decision.task, "state": "ignored", "reason": str(e)})
            continue
        except CardiogateError as e:
            entries.append({**entry, "task": decision.task, "state": "failed", "reason": str(e)})
            continue
        entries.append({**entry, "state": "reported", **result.model_dump(mode="json")})
    return entries


def format_table(entries: list[dict[str, Any]]) -> str:
    """A short human-readable summary of :func:`analyze_folder`'s entries."""
    lines = []
    for e in entries:
        lines.append(f"series {e['SeriesInstanceUID']} ({e['instances']} instances): {e['state']}")
        if e["state"] != "reported":
            lines.append(f"  reason: {e['reason']}")
            continue
        if e.get("task") == "calcium":
            a, v = e["agatston"], e["volume_mm3"]
            lines.append(f"  {'artery':<7}{'Agatston':>10}{'volume mm3':>12}")
            for key in ("LM", "LAD", "LCX", "RCA", "total"):
                lines.append(f"  {key:<7}{a[key]:>10.1f}{v[key]:>12.1f}")
            lines.append(
                f"  category: {e['category']['classic']} (classic), {e['category']['cac_drs']} "
                f"(CAC-DRS); {len(e['lesions'])} lesion(s)"
            )
            if e.get("needs_review"):
                lines.append(f"  needs review ({e['review_reason']})")
        if e.get("task") == "stenosis":
            verdict = "significant stenosis" if e["significant"] else "no significant stenosis"
            review = f"; needs review ({e['review_reason']})" if e["needs_review"] else ""
            lines.append(
                f"  {verdict} (probability {e['probability']:.2f}){review}; "
                f"view {e['projection'] or 'unknown'}; frames {e['frames_used']}"
            )
            for lesion in e["lesions"]:
                where = f"x {lesion['x_px']:.0f} y {lesion['y_px']:.0f} px"
                lines.append(
                    f"  frame {lesion['frame']}: {where}, {lesion['percent_stenosis']:.0f}% "
                    f"({lesion['grade']}), probability {lesion['probability']:.2f}"
                )
        model = e["model"]
        lines.append(f"  model: {model['name']} {model['version']} on {model['provider']}")
        lines.append(f"  {e['notice']}")
    return "\n".join(lines) if lines else "no DICOM series found"
