"""``cardiogate analyze``: the service's analysis of DICOM files in a folder, offline.

Files are grouped by series and each series is routed by the same rules as in the service;
a routed series is analysed with the same models, an ignored one reports why. Files that
are not DICOM instances of a series are listed as skipped, with their reason.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from cardiogate.config import Settings
from cardiogate.dicom.ingest import header_int, header_text
from cardiogate.errors import CardiogateError, NotAnalysableError
from cardiogate.inference import InferenceEngine
from cardiogate.pipeline.router import route
from cardiogate.store.records import SeriesAttributes
from cardiogate.tasks import Tasks, load_tasks

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"  # a DICOMDIR (PS3.10 8.6)
NOT_DICOM = "not a DICOM file (no DICM prefix, PS3.10 7.1)"
UNREADABLE = "cannot be read (permission or I/O error)"
DAMAGED = "a DICOM header that cannot be parsed"
DICOMDIR = "a DICOMDIR (the index of a medium, not an instance)"
NO_SERIES = "no SeriesInstanceUID"
SHOWN_PER_REASON = 5  # paths listed under each reason; the rest are counted


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 instance``, ``2 instances`` (``many`` for an irregular plural)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


@dataclass(frozen=True, slots=True)
class FoundSeries:
    """A series in a folder: what routing looks at, its SeriesNumber and its files."""

    attributes: SeriesAttributes
    SeriesNumber: int | None
    paths: list[Path]


@dataclass(frozen=True, slots=True)
class SkippedFile:
    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class FolderScan:
    root: Path
    series: dict[str, FoundSeries] = field(default_factory=dict)
    skipped: list[SkippedFile] = field(default_factory=list)


def scan_folder(root: Path) -> FolderScan:
    """DICOM files under ``root`` (recursively) grouped by SeriesInstanceUID, and the files
    skipped with their reason."""
    files: dict[str, list[Path]] = defaultdict(list)
    headers: dict[str, Any] = {}
    skipped: list[SkippedFile] = []
    candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in candidates:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            skipped.append(SkippedFile(path, NOT_DICOM))
            continue
        except OSError:
            skipped.append(SkippedFile(path, UNREADABLE))
            continue
        except ValueError:
            skipped.append(SkippedFile(path, DAMAGED))
            continue
        uid = header_text(ds, "SeriesInstanceUID")
        if uid:
            files[uid].append(path)
            headers.setdefault(uid, ds)
        elif header_text(ds.file_meta, "MediaStorageSOPClassUID") == MEDIA_STORAGE_DIRECTORY:
            skipped.append(SkippedFile(path, DICOMDIR))
        else:
            skipped.append(SkippedFile(path, NO_SERIES))
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
        found[uid] = FoundSeries(attributes, header_int(ds, "SeriesNumber"), paths)
    return FolderScan(root, found, skipped)


def find_series(root: Path) -> dict[str, tuple[SeriesAttributes, list[Path]]]:
    """DICOM files under ``root`` (recursively), grouped by SeriesInstanceUID."""
    return {uid: (s.attributes, s.paths) for uid, s in scan_folder(root).series.items()}


def format_skipped(scan: FolderScan) -> str:
    """The skipped files counted by reason, each reason with its first few paths (relative
    to the folder); empty when none was skipped."""
    if not scan.skipped:
        return ""
    by_reason: dict[str, list[Path]] = defaultdict(list)
    for item in scan.skipped:
        by_reason[item.reason].append(item.path)
    counts = Counter({reason: len(paths) for reason, paths in by_reason.items()})
    lines = [f"skipped {plural(len(scan.skipped), 'file')}:"]
    for reason, count in counts.most_common():
        lines.append(f"  {plural(count, 'file')}: {reason}")
        paths = by_reason[reason]
        for path in paths[:SHOWN_PER_REASON]:
            inside = scan.root.is_dir() and path.is_relative_to(scan.root)
            shown = path.relative_to(scan.root) if inside else path
            lines.append(f"    {shown}")
        if len(paths) > SHOWN_PER_REASON:
            lines.append(f"    and {len(paths) - SHOWN_PER_REASON} more")
    return "\n".join(lines)


def analyze_folder(
    scan: FolderScan, settings: Settings, engine: InferenceEngine, tasks: Tasks | None = None
) -> list[dict[str, Any]]:
    """One entry per series of ``scan``: the task's result, or ``ignored``/``failed`` with a
    reason (the installed ``tasks``, by default those the settings configure)."""
    tasks = load_tasks(settings) if tasks is None else tasks
    loaded = {t for t in engine.models if t in tasks}
    entries: list[dict[str, Any]] = []
    for uid, found in scan.series.items():
        attributes, paths = found.attributes, found.paths
        decision = route(attributes, tasks, loaded)
        entry: dict[str, Any] = {"SeriesInstanceUID": uid, "instances": len(paths)}
        if decision.task is None:
            entries.append({**entry, "task": None, "state": "ignored", "reason": decision.reason})
            continue
        try:
            # what it needs first, then the task
            result = tasks.analyse(decision.task, paths, engine.get).analysed.result
        except NotAnalysableError as e:  # valid, but not what the task is made for
            entries.append({**entry, "task": decision.task, "state": "ignored", "reason": str(e)})
            continue
        except CardiogateError as e:
            entries.append({**entry, "task": decision.task, "state": "failed", "reason": str(e)})
            continue
        entries.append({**entry, "state": "reported", **result.model_dump(mode="json")})
    return entries


def format_table(entries: list[dict[str, Any]], tasks: Tasks) -> str:
    """A short human-readable summary of :func:`analyze_folder`'s entries."""
    lines = []
    for e in entries:
        count = plural(e["instances"], "instance")
        lines.append(f"series {e['SeriesInstanceUID']} ({count}): {e['state']}")
        if e["state"] != "reported":
            lines.append(f"  reason: {e['reason']}")
            continue
        task = tasks.get(e.get("task") or "")
        if task is not None:
            lines += [f"  {line}" for line in task.report_lines(e)]
        model = e["model"]
        lines.append(f"  model: {model['name']} {model['version']} on {model['provider']}")
        lines.append(f"  {e['notice']}")
    return "\n".join(lines) if lines else "no DICOM series found"
