"""``cardiogate route explain``: which routing rule each series meets, or why none does.

The series of a folder, or of a study the service has stored, are routed with the current
settings by the service's own rules (:func:`.router.route`), and the candidates of a task
that analyses one series per study are weighed by its rule (:mod:`.reconstructions`) as if
the study had arrived whole. For a stored study, each series also shows its job: what the
service did when the series completed, under the settings it had then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from cardiogate.inference.card import CARD_FILE, read_card
from cardiogate.pipeline import reconstructions
from cardiogate.pipeline.offline import FolderScan, plural
from cardiogate.pipeline.router import Route, route
from cardiogate.store import Store
from cardiogate.store.records import StudySeries
from cardiogate.tasks import Tasks

NOT_ROUTED = "-"
DESCRIPTION_WIDTH = 28


@dataclass(frozen=True, slots=True)
class Explained:
    """One series: the task today's rules give it (None: not routed) and ``reason``, the
    rule that matched or why none did; for a stored series, its job's state and reason."""

    StudyInstanceUID: str
    SeriesInstanceUID: str
    SeriesNumber: int | None
    Modality: str | None
    SeriesDescription: str | None
    instances: int
    task: str | None
    reason: str
    job_state: str | None = None
    job_reason: str | None = None


def model_tasks(models_dir: Path, analysed: Sequence[str]) -> set[str]:
    """The tasks of the model folders under ``models_dir`` that the service runs
    (``analysed``): the cards are read and checked against their models, nothing is loaded.

    Raises
    ------
    CardError
        A card that the service would refuse at start-up too.
    """
    folders = sorted(p.parent for p in models_dir.glob(f"*/{CARD_FILE}"))
    return {t for t in (read_card(f).task for f in folders) if t in analysed}


def _decide(series: Sequence[StudySeries], tasks: Tasks, loaded: set[str]) -> dict[str, Route]:
    """Each series' route by SeriesInstanceUID; a candidate that its task's one-per-study
    rule passes over is not routed, naming the one it prefers."""
    decisions = {s.attributes.SeriesInstanceUID: route(s.attributes, tasks, loaded) for s in series}
    candidates: dict[tuple[str, str], list[StudySeries]] = defaultdict(list)
    for s in series:
        task = decisions[s.attributes.SeriesInstanceUID].task
        if task is not None and tasks[task].one_per_study:
            candidates[(s.attributes.StudyInstanceUID, task)].append(s)
    for (_, task), group in candidates.items():
        best = reconstructions.choose(tasks[task], group)
        for s in group:
            if s is not best:
                decisions[s.attributes.SeriesInstanceUID] = Route(
                    None, tasks[task].chosen_reason(best)
                )
    return decisions


def explain(series: Sequence[StudySeries], tasks: Tasks, loaded: set[str]) -> list[Explained]:
    """Route ``series`` (of one or more studies) as the service would if each study arrived
    whole now, with the tasks whose models are ``loaded``; ordered by study, then
    SeriesNumber."""
    decisions = _decide(series, tasks, loaded)
    explained = []
    for s in series:
        decision = decisions[s.attributes.SeriesInstanceUID]
        explained.append(
            Explained(
                StudyInstanceUID=s.attributes.StudyInstanceUID,
                SeriesInstanceUID=s.attributes.SeriesInstanceUID,
                SeriesNumber=s.SeriesNumber,
                Modality=s.attributes.Modality,
                SeriesDescription=s.attributes.SeriesDescription,
                instances=s.attributes.instance_count,
                task=decision.task,
                reason=decision.reason,
                job_state=s.job_state,
                job_reason=s.job_reason,
            )
        )
    return sorted(
        explained,
        key=lambda e: (
            e.StudyInstanceUID,
            e.SeriesNumber is None,
            e.SeriesNumber or 0,
            e.SeriesInstanceUID,
        ),
    )


def explain_folder(scan: FolderScan, tasks: Tasks, loaded: set[str]) -> list[Explained]:
    """The series found in a folder (no job: the service has not seen them)."""
    series = [StudySeries(f.attributes, f.SeriesNumber, None, None) for f in scan.series.values()]
    return explain(series, tasks, loaded)


def explain_study(
    store: Store, StudyInstanceUID: str, tasks: Tasks, loaded: set[str]
) -> list[Explained]:
    """The series of a stored study with their jobs; empty when the store has no such study."""
    return explain(store.series_of_study_with_jobs(StudyInstanceUID), tasks, loaded)


def as_json(items: Sequence[Explained], stored: bool) -> list[dict[str, object]]:
    """The explanations as JSON objects; a stored series has ``job`` (null before it is
    routed), a folder's series none."""
    out = []
    for item in items:
        entry: dict[str, object] = asdict(item)
        state, reason = entry.pop("job_state"), entry.pop("job_reason")
        if stored:
            entry["job"] = None if state is None else {"state": state, "reason": reason}
        out.append(entry)
    return out


def _cut(text: str | None, width: int) -> str:
    text = text or ""
    return text if len(text) <= width else text[: width - 3] + "..."


def _line(cells: list[str], widths: list[int]) -> str:
    """Cells padded to ``widths``, the last one (the reason) as long as it is."""
    padded = [c.ljust(w) for c, w in zip(cells, widths, strict=False)]
    return "  ".join([*padded, cells[-1]]).rstrip()


def format_explanations(items: Sequence[Explained], stored: bool) -> str:
    """A table per study: series, modality, instances, description, (its job,) the task it
    is routed to and the rule or reason; a job whose reason differs from today's rule gets
    a line of its own under its row."""
    if not items:
        return "no DICOM series found"
    header = ["Series", "Modality", "Instances", "Description"]
    header += ["Job"] if stored else []
    header += ["Routed to", "Rule or reason"]
    studies: dict[str, list[Explained]] = defaultdict(list)
    for item in items:
        studies[item.StudyInstanceUID].append(item)
    blocks = []
    for study, members in studies.items():
        rows = []
        for e in members:
            row = [
                str(e.SeriesNumber) if e.SeriesNumber is not None else e.SeriesInstanceUID,
                e.Modality or "?",
                str(e.instances),
                _cut(e.SeriesDescription, DESCRIPTION_WIDTH),
            ]
            row += [e.job_state or "none"] if stored else []
            row += [e.task or NOT_ROUTED, e.reason]
            rows.append((row, e))
        table = [header, *(row for row, _ in rows)]
        widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
        lines = [
            f"study {study}: {plural(len(members), 'series', 'series')}",
            _line(header, widths),
        ]
        for row, e in rows:
            lines.append(_line(row, widths))
            if e.job_reason and e.job_reason != e.reason:
                lines.append(f"    job {e.job_state}: {e.job_reason}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
