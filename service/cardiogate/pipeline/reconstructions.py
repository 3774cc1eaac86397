"""One reconstruction per study: which of a study's calcium candidates is scored.

The rule and how it meets series that complete at different times are in
:mod:`.router`'s docstring; this module holds the choice itself, as pure functions over
the study's series (:class:`~cardiogate.store.records.StudySeries`), so it is tested without
a store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cardiogate.store.records import StudySeries

AGATSTON_SLICE_MM = 3.0
# Routing picks one series per study only for this task (several reports would disagree).
ONE_PER_STUDY_TASK = "calcium"
# Job states of a rival that holds the study's place: queued, or run (or running) already.
ROUTED_STATES = frozenset({"queued", "running", "reported", "delivered"})
# Series description / protocol name hints of a sharp or bone kernel (Siemens B/Br/I/Qr
# kernels of sharpness 50 and up, and the words vendors use).
SHARP_KERNEL = re.compile(
    r"sharp|bone|lung|\bdetail\b|\bedge\b|\b(?:b|br|bv|i|qr|hr)[5-9]\d[a-z]?\b", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Settlement:
    """What routing does with a new calcium candidate: score it or not (``scored``), and
    which rivals' still-queued jobs to turn into ignored (``withdraw``, SeriesInstanceUIDs);
    ``reason`` is what the one(s) not scored are told (it names the chosen series)."""

    scored: bool
    reason: str = ""
    withdraw: tuple[str, ...] = ()


def _thickness(series: StudySeries) -> float | None:
    try:
        return float(series.attributes.SliceThickness or "")
    except ValueError:
        return None


def sharp_kernel(series: StudySeries) -> bool:
    """Whether the series' names hint at a sharp or bone reconstruction kernel."""
    names = (series.attributes.SeriesDescription, series.attributes.ProtocolName)
    return any(SHARP_KERNEL.search(name) for name in names if name)


def preference(series: StudySeries) -> tuple[float, bool, int, bool, int, str]:
    """The sort key of the rule: the lowest key is the one scored."""
    thickness = _thickness(series)
    return (
        abs(thickness - AGATSTON_SLICE_MM) if thickness is not None else float("inf"),
        sharp_kernel(series),
        -series.attributes.instance_count,
        series.SeriesNumber is None,
        series.SeriesNumber or 0,
        series.attributes.SeriesInstanceUID,
    )


def choose(candidates: Sequence[StudySeries]) -> StudySeries:
    """The reconstruction the calcium task scores among ``candidates`` (not empty)."""
    return min(candidates, key=preference)


def other_reason(chosen: StudySeries) -> str:
    """The reason given to the reconstructions that are not ``chosen``."""
    name = (
        f"series {chosen.SeriesNumber}"
        if chosen.SeriesNumber is not None
        else f"series {chosen.attributes.SeriesInstanceUID}"
    )
    thickness = _thickness(chosen)
    if thickness is not None:
        name += f", {thickness:g} mm"
    return f"another reconstruction of this study is scored: {name}"


def settle(new: str, study: Sequence[StudySeries]) -> Settlement:
    """Compare the new calcium candidate ``new`` (a SeriesInstanceUID of ``study``) with
    the study's other candidates routed already (calcium jobs in :data:`ROUTED_STATES`)."""
    [candidate] = [s for s in study if s.attributes.SeriesInstanceUID == new]
    rivals = [
        s
        for s in study
        if s.attributes.SeriesInstanceUID != new
        and s.task == ONE_PER_STUDY_TASK
        and s.job_state in ROUTED_STATES
    ]
    if not rivals:
        return Settlement(scored=True)
    chosen = choose([candidate, *rivals])
    if chosen is not candidate:
        return Settlement(scored=False, reason=other_reason(chosen))
    queued = tuple(s.attributes.SeriesInstanceUID for s in rivals if s.job_state == "queued")
    return Settlement(scored=True, reason=other_reason(candidate), withdraw=queued)


def passed_over(chosen: str, study: Sequence[StudySeries]) -> list[str]:
    """The series ignored because ``chosen`` (a SeriesInstanceUID of ``study``) was to be
    scored: when ``chosen`` turns out not analysable (a CTA whose header said nothing),
    these are routed again, so the study still gets its score."""
    [series] = [s for s in study if s.attributes.SeriesInstanceUID == chosen]
    reason = other_reason(series)
    return [
        s.attributes.SeriesInstanceUID
        for s in study
        if s.job_state == "ignored" and s.job_reason == reason
    ]
