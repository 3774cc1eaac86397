"""What happened to each case of the interoperability corpus, judged against what a user
should see (:class:`interop_corpus.Expected`), and the Markdown table of it for
docs/interoperability.md."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardiogate.dicom.status import STORED, Status
from interop_corpus import Built, Case

FINAL = ("delivered", "failed", "ignored")
# A reason that is an exception's class name or a message from a library, not ours
EXCEPTION_LIKE = re.compile(r"internal error|\b[A-Z][A-Za-z]*(Error|Exception)\b|Traceback")


@dataclass
class Outcome:
    """One case as the service handled it: the C-STORE statuses (with error comments), the
    presentation contexts it rejected, the job after the first round and after the second
    (the late slice, the re-send), and the service log's lines on the job's failure."""

    statuses: list[int] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    job: dict[str, Any] | None = None
    later: dict[str, Any] | None = None
    log: str = ""


def status_name(code: int) -> str:
    try:
        return f"0x{code:04X} {Status(code).name}"
    except ValueError:
        return f"0x{code:04X}"


def _calcium_differences(got: dict[str, Any], want: dict[str, Any], lossy: bool) -> list[str]:
    total = float(want["agatston"]["total"])
    tolerance = max(5.0, 0.10 * total) if lossy else 0.5
    found = [
        f"Agatston {artery} {got['agatston'].get(artery)} (clean: {score})"
        for artery, score in want["agatston"].items()
        if abs(float(got["agatston"].get(artery, -1e9)) - float(score)) > tolerance
    ]
    if got["category"]["classic"] != want["category"]["classic"]:
        found.append(
            f"category {got['category']['classic']} (clean: {want['category']['classic']})"
        )
    return found


def _lesion(lesion: dict[str, Any]) -> str:
    where = f"({lesion['x_px']}, {lesion['y_px']})"
    return f"frame {lesion['frame']} {where} {lesion['percent_stenosis']}%"


def _stenosis_differences(got: dict[str, Any], want: dict[str, Any], lossy: bool) -> list[str]:
    if got["significant"] != want["significant"]:
        return [f"significant {got['significant']} (clean: {want['significant']})"]
    if not want["lesions"]:
        return [] if not got["lesions"] else [f"lesions {got['lesions']} (clean: none)"]
    if lossy:  # the most severe lesion: grade and place, within what lossy coding moves
        a, b = got["most_severe"], want["most_severe"]
        apart = ((a["x_px"] - b["x_px"]) ** 2 + (a["y_px"] - b["y_px"]) ** 2) ** 0.5
        if abs(a["percent_stenosis"] - b["percent_stenosis"]) > 5 or apart > 3:
            return [f"most severe {_lesion(a)} (clean: {_lesion(b)})"]
        return []
    mine, theirs = (sorted(map(_lesion, r["lesions"])) for r in (got, want))
    return [] if mine == theirs else [f"lesions {mine} (clean: {theirs})"]


def differences(got: dict[str, Any] | None, want: dict[str, Any] | None, lossy: bool) -> list[str]:
    """How a result differs from its clean twin's, beyond the tolerances."""
    if got is None or want is None:
        return [f"no result to compare (case: {got is not None}, clean twin: {want is not None})"]
    if "agatston" in want:
        return _calcium_differences(got, want, lossy)
    return _stenosis_differences(got, want, lossy)


def _job_problems(job: dict[str, Any] | None, log: str) -> list[str]:
    if job is None:
        return ["no job for the series"]
    reason = job.get("reason") or ""
    if EXCEPTION_LIKE.search(reason):
        return [f"job reason is not a named reason: {reason!r}" + (f"\n{log}" if log else "")]
    return []


def _stored(outcome: Outcome) -> list[str]:
    if outcome.rejected:
        return [f"presentation context rejected at negotiation: {', '.join(outcome.rejected)}"]
    bad = [
        f"{status_name(s)} {c}".strip()
        for s, c in zip(outcome.statuses, outcome.comments, strict=True)
        if s not in STORED
    ]
    return [f"C-STORE refused: {'; '.join(sorted(set(bad)))}"] if bad else []


def _state(job: dict[str, Any], state: str, reason: str = "") -> list[str]:
    if job["state"] != state or not re.search(reason, job.get("reason") or "", re.IGNORECASE):
        want = state + (f" /{reason}/" if reason else "")
        return [f"job {job['state']}: {job.get('reason')!r} (expected {want})"]
    return []


def _timeline_problems(first: dict[str, Any], job: dict[str, Any]) -> list[str]:
    events = [e["event"] for e in job.get("timeline", [])]
    times = [e["at"] for e in job.get("timeline", [])]
    failed = [e for e in job.get("timeline", []) if e["event"] == "failed"]
    if not failed or failed[0]["detail"] != first["reason"]:
        return [f"the first failure is not on the timeline: {events}"]
    order = [events.index(e) if e in events else -1 for e in ("failed", "re-queued", "reported")]
    if -1 in order or order != sorted(order) or times != sorted(times):
        return [f"timeline is not failed, re-queued, reported, oldest first: {events}"]
    return []


def problems(case: Case, outcomes: dict[str, Outcome]) -> list[str]:
    """What differs from what the case expects; empty when it is as it should be."""
    outcome, expected = outcomes[case.id], case.expected
    if expected.kind == "refused":
        if outcome.statuses != [expected.status]:
            names = [status_name(s) for s in outcome.statuses] or outcome.rejected
            return [f"expected {status_name(expected.status)}, got {names}"]
        return []
    found = _stored(outcome) or _job_problems(outcome.job, outcome.log)
    if found or outcome.job is None:
        return found
    twin = outcomes[expected.twin].job if expected.twin else None
    want = None if twin is None else twin.get("result")
    if expected.kind == "ignored":
        return _state(outcome.job, "ignored", expected.reason)
    if expected.kind == "analysed":
        found = _state(outcome.job, "delivered")
        if found or case.id != expected.twin:
            return found or differences(outcome.job["result"], want, expected.lossy)
        result = outcome.job["result"]
        meaningful = result.get("significant") or result.get("agatston", {}).get("total", 0) > 0
        return [] if meaningful else [f"the clean twin found nothing to compare: {result}"]
    later = outcome.later
    if later is None:
        return ["no job after the second round"]
    found = _job_problems(later, outcome.log)
    if expected.kind == "gap":
        found += _state(outcome.job, "failed", expected.reason) + _state(later, "delivered")
        if not found:
            found = differences(later["result"], want, False)
            found += _timeline_problems(outcome.job, later)
        return found
    before = [v["version_index"] for v in outcome.job.get("report_versions", [])]
    after = [v["version_index"] for v in later.get("report_versions", [])]
    found += _state(later, "delivered") + differences(later.get("result"), want, False)
    if before != after:
        found.append(f"report versions {before} became {after}")
    return found


def _result_text(job: dict[str, Any]) -> str:
    if job["state"] != "delivered" and job["state"] != "reported":
        return f"{job['state']}: {job.get('reason')}"
    result = job.get("result") or {}
    if "agatston" in result:
        total = result["agatston"]["total"]
        return f"{job['state']}: Agatston {total:g} ({result['category']['classic']})"
    worst = result.get("most_severe")
    text = (
        f"{worst['percent_stenosis']:g}% stenosis, CAD-RADS {worst['cad_rads']}"
        if worst
        else "no lesion"
    )
    return f"{job['state']}: {text}"


def describe(case: Case, outcome: Outcome) -> str:
    """The outcome in a table cell."""
    if outcome.rejected:
        return f"context rejected ({', '.join(outcome.rejected)})"
    refused = sorted({s for s in outcome.statuses if s not in STORED})
    if refused:
        return "C-STORE " + ", ".join(map(status_name, refused))
    if outcome.job is None:
        return "stored; no job"
    text = _result_text(outcome.job)
    if case.expected.kind == "gap" and outcome.later is not None:
        text += f"; after the late slice {_result_text(outcome.later)}"
    if case.expected.kind == "resent" and outcome.later is not None:
        before = len(outcome.job.get("report_versions", []))
        after = len(outcome.later.get("report_versions", []))
        text = f"{_result_text(outcome.later)}; report versions {before} → {after}"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_table(
    path: Path, cases: list[Case], built: dict[str, Built], outcomes: dict[str, Outcome]
) -> None:
    """The outcome of every case as a Markdown table (docs/interoperability.md)."""
    lines = [
        "| Case | Source | Tool | Transfer syntax | Defect | Outcome | As expected |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        if case.id not in outcomes:
            continue
        found = problems(case, outcomes)
        verdict = "yes" if not found else f"no: {case.expected}"
        cells = (
            case.id,
            case.source,
            case.tool,
            built[case.id].transfer_syntax,
            case.defect,
            describe(case, outcomes[case.id]),
            verdict,
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
