"""One series per study, for a task that says so (``Task.one_per_study``): a scanner often
reconstructs one acquisition several times (3 mm and 2.5 mm, a soft and a sharp kernel) and
the PACS forwards them all, but several reports of one study would disagree.

The task ranks the candidates (:meth:`cardiogate.tasks.Task.preference`, lowest first).
Series complete at different times, so the choice is made each time a candidate completes,
against the study's other candidates that are routed already (queued, running, reported or
delivered). A new series that loses is ignored with the task's reason
(:meth:`~cardiogate.tasks.Task.chosen_reason`, e.g. "another reconstruction of this study is
scored: series 3, 3 mm"). A new series that wins is queued, and a loser still queued is
turned into ignored with that reason; a loser already running or reported is left alone (its
result stands, so that study then has two results). When the chosen series turns out not
analysable (a CTA whose header said nothing, found by its pixels), the worker routes the
series passed over for it again (:func:`passed_over`).

These are pure functions over the study's series
(:class:`~cardiogate.store.records.StudySeries`), tested without a store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cardiogate.store.records import StudySeries
from cardiogate.tasks.contract import Task

# Job states of a rival that holds the study's place: queued, or run (or running) already.
ROUTED_STATES = frozenset({"queued", "running", "reported", "delivered"})


@dataclass(frozen=True, slots=True)
class Settlement:
    """What routing does with a new candidate: analyse it or not (``scored``), and which
    rivals' still-queued jobs to turn into ignored (``withdraw``, SeriesInstanceUIDs);
    ``reason`` is what the one(s) not analysed are told (it names the chosen series)."""

    scored: bool
    reason: str = ""
    withdraw: tuple[str, ...] = ()


def choose(task: Task, candidates: Sequence[StudySeries]) -> StudySeries:
    """The series ``task`` analyses among ``candidates`` (not empty)."""
    return min(candidates, key=task.preference)


def settle(task: Task, new: str, study: Sequence[StudySeries]) -> Settlement:
    """Compare the new candidate ``new`` (a SeriesInstanceUID of ``study``) with the study's
    other candidates routed already (``task``'s jobs in :data:`ROUTED_STATES`)."""
    if not task.one_per_study:
        return Settlement(scored=True)
    [candidate] = [s for s in study if s.attributes.SeriesInstanceUID == new]
    rivals = [
        s
        for s in study
        if s.attributes.SeriesInstanceUID != new
        and s.task == task.name
        and s.job_state in ROUTED_STATES
    ]
    if not rivals:
        return Settlement(scored=True)
    chosen = choose(task, [candidate, *rivals])
    if chosen is not candidate:
        return Settlement(scored=False, reason=task.chosen_reason(chosen))
    queued = tuple(s.attributes.SeriesInstanceUID for s in rivals if s.job_state == "queued")
    return Settlement(scored=True, reason=task.chosen_reason(candidate), withdraw=queued)


def passed_over(task: Task, chosen: str, study: Sequence[StudySeries]) -> list[str]:
    """The series ignored because ``chosen`` (a SeriesInstanceUID of ``study``) was to be
    analysed: when ``chosen`` turns out not analysable, these are routed again, so the
    study still gets its result."""
    if not task.one_per_study:
        return []
    [series] = [s for s in study if s.attributes.SeriesInstanceUID == chosen]
    reason = task.chosen_reason(series)
    return [
        s.attributes.SeriesInstanceUID
        for s in study
        if s.job_state == "ignored" and s.job_reason == reason
    ]
