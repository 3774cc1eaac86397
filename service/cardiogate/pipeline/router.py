"""Routing: which task analyses a complete series, and why the others are not analysed.

A PACS forwards whole studies, so most series are not for us: each one that is not gets
``ignored`` with a reason an operator can read. Objects that are not images (dose reports,
other structured reports, presentation states, raw data, encapsulated documents,
segmentations) and secondary captures are recognised by their SOP Class UID (PS3.4 B.5)
before anything else, each with a note ("dose report (X-Ray Radiation Dose SR): not
analysed"). Then every installed task is asked (:meth:`cardiogate.tasks.Task.route`, in
routing order): the first that takes the series and has its model loaded analyses it;
otherwise the first task that knows the kind of series gives the reason it is not analysed
("not scored: contrast-enhanced ...", "no calcium model is loaded"); when no task knows it,
its modality is not analysed. The tasks' rules are settings (the ``<task>_`` keys of
``CARDIOGATE_ROUTING``) so a site can adapt them to its protocol names.

A task that analyses one series per study (several reconstructions of one acquisition)
is settled against the study's other candidates by :mod:`.reconstructions`.
"""

from __future__ import annotations

from collections.abc import Collection

from pydicom.uid import UID

from cardiogate.store.records import SeriesAttributes
from cardiogate.tasks.contract import Route
from cardiogate.tasks.registry import Tasks

__all__ = ["NOT_IMAGES", "Route", "not_image_note", "route"]

_STORAGE = "1.2.840.10008.5.1.4.1.1."
STRUCTURED_REPORTS = _STORAGE + "88."

# SOP classes that are not images for us, by what an operator calls them (PS3.4 B.5)
NOT_IMAGES: dict[str, str] = {
    **dict.fromkeys([_STORAGE + s for s in ("7", "7.1", "7.2", "7.3", "7.4")], "secondary capture"),
    **dict.fromkeys([_STORAGE + s for s in ("88.67", "88.68", "88.73", "88.76")], "dose report"),
    **dict.fromkeys([_STORAGE + s for s in ("88.74", "88.75")], "contrast administration report"),
    **dict.fromkeys(
        [_STORAGE + s for s in ("88.11", "88.22", "88.33", "88.34", "88.35")], "report"
    ),
    _STORAGE + "88.59": "key image note",
    **dict.fromkeys([_STORAGE + s for s in ("11.1", "11.2", "11.3", "11.4")], "presentation state"),
    _STORAGE + "66": "raw data",
    **dict.fromkeys([_STORAGE + s for s in ("66.1", "66.2", "66.3")], "registration"),
    _STORAGE + "66.4": "segmentation",
    **dict.fromkeys([_STORAGE + s for s in ("104.1", "104.2", "104.3")], "document"),
}


def not_image_note(SOPClassUID: str | None) -> str | None:
    """The note for a series of a SOP class that is not an image for us, else None."""
    uid = SOPClassUID or ""
    kind = NOT_IMAGES.get(uid)
    if kind is None and uid.startswith(STRUCTURED_REPORTS):
        kind = "structured report"
    if kind is None:
        return None
    name = UID(uid).name
    name = uid if name == uid else name.removesuffix(" Storage")
    return f"{kind} ({name}): not analysed"


def route(series: SeriesAttributes, tasks: Tasks, loaded: Collection[str]) -> Route:
    """Decide the task for a complete series; ``task`` None means ignored for ``reason``.
    ``loaded`` names the tasks whose model is loaded. The first task that takes the series
    and has its model analyses it; otherwise the first task (in routing order) that knows
    the series says why not: its refusal, or that its model is not loaded."""
    note = not_image_note(series.SOPClassUID)
    if note is not None:
        return Route(None, note)
    first: Route | None = None
    for task in tasks.values():
        decision = task.route(series)
        if decision is None:
            continue
        if decision.task is not None:
            if decision.task in loaded:
                return decision
            decision = Route(None, f"no {decision.task} model is loaded")
        first = first or decision
    if first is not None:
        return first
    return Route(None, f"modality {series.Modality or 'unknown'} is not analysed")
