"""The interoperability corpus (``interop_corpus.py``) through the real service.

One ``cardiogate serve`` with the shipped models and dcmtk's ``storescp`` as the PACS gets
every case over C-STORE, one association per case proposing exactly the files' transfer
syntaxes, as a PACS that cannot convert them would. A second round sends the gap case's late
slice and re-sends a delivered series in another transfer syntax. Each case then says
whether the user got what they should: the file stored (or refused with a named status),
the series analysed with its clean twin's result, or ignored or failed for a named reason.

``CARDIOGATE_INTEROP_TABLE=path`` writes the outcome of every case as Markdown, the table
of the Interoperability page (docs/interoperability.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.uid import UID
from pynetdicom import AE, _config

from cardiogate.dicom.status import STORED
from interop_cases import BY_ID, CASES, GAP_INDEX, SECOND_ROUND
from interop_corpus import Built, build_corpus
from interop_outcomes import EXCEPTION_LIKE, FINAL, Outcome, problems, write_table
from peers import REPO, ServeProcess, dcmtk, free_port, start_serve, stop_serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d[ T]")  # the start of a log record


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Every case's files, built once per session."""
    return build_corpus(tmp_path_factory.mktemp("interop-corpus"), CASES)


def send_files(port: int, files: list[Path], outcome: Outcome) -> None:
    """One association proposing each file's (SOP class, transfer syntax) only; the files
    are sent byte for byte, never decoded and re-encoded."""
    metas = [pydicom.filereader.read_file_meta_info(f) for f in files]
    pairs = [(str(m.MediaStorageSOPClassUID), str(m.TransferSyntaxUID)) for m in metas]
    ae = AE(ae_title="INTEROP")
    for sop_class, syntax in dict.fromkeys(pairs):
        ae.add_requested_context(sop_class, syntax)
    assoc = ae.associate("127.0.0.1", port, ae_title="CARDIOGATE")
    if not assoc.is_established:  # pynetdicom aborts when no context is accepted
        outcome.rejected = sorted({UID(syntax).name for _, syntax in pairs})
        return
    accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    try:
        for path, pair in zip(files, pairs, strict=True):
            if pair not in accepted:
                name = UID(pair[1]).name
                outcome.rejected += [] if name in outcome.rejected else [name]
                continue
            rsp = assoc.send_c_store(path)
            outcome.statuses.append(int(rsp.get("Status", -1)))
            outcome.comments.append(str(rsp.get("ErrorComment", "")))
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
        assoc.release()


def _get(server: ServeProcess, path: str) -> Any:
    r = httpx.get(server.base_url + path, headers=server.auth, timeout=10)
    r.raise_for_status()
    return r.json()


def wait_for_jobs(
    server: ServeProcess, series: set[str], timeout: float, not_finished_at: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Each series' job in full once it is final (and, for those in ``not_finished_at``,
    finished again since); after ``timeout``, the jobs as they are, for the cases to say
    which is stuck where."""
    deadline, latest = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        items = _get(server, "/api/v1/jobs?limit=1000")["items"]
        latest = {j["SeriesInstanceUID"]: j for j in reversed(items)}
        if all(
            uid in latest
            and latest[uid]["state"] in FINAL
            and latest[uid]["finished_at"] != not_finished_at.get(uid, "")
            for uid in series
        ):
            break
        time.sleep(0.3)
    return {
        uid: _get(server, f"/api/v1/jobs/{latest[uid]['id']}") for uid in series if uid in latest
    }


def _failure_log(log: list[str], job_id: int) -> str:
    """The service log's record of an unexpected failure of ``job_id``, traceback and all."""
    for start, line in enumerate(log):
        if f"job {job_id} (" in line and "unexpectedly" in line:
            end = next((i for i in range(start + 1, len(log)) if _RECORD.match(log[i])), len(log))
            return "\n".join(log[start:end][-25:])
    return ""


@dataclass
class Run:
    outcomes: dict[str, Outcome]
    all_jobs: list[dict[str, Any]]


def _serve(tmp: Path, pacs_port: int) -> ServeProcess:
    return start_serve(
        tmp / "data",
        env={
            "CARDIOGATE_MODELS_DIR": str(REPO / "models"),
            "CARDIOGATE_QUIET_SECONDS": "1",
            "CARDIOGATE_ASSEMBLER_POLL_SECONDS": "0.2",
            "CARDIOGATE_LISTENER_PROCESSES": "1",
            "CARDIOGATE_DESTINATIONS": (
                f'[{{"ae_title": "PACS", "host": "127.0.0.1", "port": {pacs_port}}}]'
            ),
            "CARDIOGATE_DELIVERY_POLL_SECONDS": "0.2",
            "CARDIOGATE_DELIVERY_INITIAL_DELAY_SECONDS": "0.2",
        },
    )


def _rounds(server: ServeProcess, corpus: dict[str, Built]) -> dict[str, Outcome]:
    """Send the first round and wait for its jobs; then the late slices and the re-sends,
    and wait for their series' jobs to be final again."""
    cases = [case for case in CASES if case.id in corpus]
    outcomes = {case.id: Outcome() for case in cases}
    late = {case.id for case in cases if case.expected.kind == "gap"}
    for case in cases:
        files = corpus[case.id].files
        if case.id not in SECOND_ROUND:
            held = files[GAP_INDEX] if case.id in late else None
            send_files(server.dicom_port, [f for f in files if f != held], outcomes[case.id])
    first = {
        corpus[c.id].SeriesInstanceUID: c.id
        for c in cases
        if c.id not in SECOND_ROUND and set(outcomes[c.id].statuses) & STORED
    }
    for uid, job in wait_for_jobs(server, set(first), 300, {}).items():
        outcomes[first[uid]].job = job
    second: dict[str, str] = {}  # SeriesInstanceUID: case id
    finished: dict[str, str] = {}  # when the gap cases' first run ended
    for case in cases:
        if case.id not in late | SECOND_ROUND:
            continue
        uid, files = corpus[case.id].SeriesInstanceUID, corpus[case.id].files
        if case.id in late:
            send_files(server.dicom_port, [files[GAP_INDEX]], outcomes[case.id])
            finished[uid] = (outcomes[case.id].job or {}).get("finished_at", "")
        else:
            send_files(server.dicom_port, files, outcomes[case.id])
            outcomes[case.id].job = outcomes[case.expected.twin].job
        second[uid] = case.id
    time.sleep(2)  # a series re-opened by the re-send completes after the quiet period
    for uid, job in wait_for_jobs(server, set(second), 120, finished).items():
        outcomes[second[uid]].later = job
    return outcomes


@pytest.fixture(scope="module")
def run(corpus: dict[str, Built], tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("interop-run")
    (tmp / "pacs").mkdir()
    pacs_port = free_port()
    pacs = subprocess.Popen(
        [dcmtk("storescp"), "-aet", "PACS", "-od", str(tmp / "pacs"), str(pacs_port)],
        env={**os.environ, "TCP_NODELAY": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server = _serve(tmp, pacs_port)
    except RuntimeError:
        pacs.terminate()
        raise
    try:
        outcomes = _rounds(server, corpus)
        log = server.log().splitlines()
        for outcome in outcomes.values():
            for job in (outcome.job, outcome.later):
                if job is not None and job["state"] == "failed":
                    outcome.log = outcome.log or _failure_log(log, job["id"])
        all_jobs = _get(server, "/api/v1/jobs?limit=1000")["items"]
    finally:
        stop_serve(server)
        pacs.terminate()
        pacs.wait(10)
    table = os.environ.get("CARDIOGATE_INTEROP_TABLE")
    if table:
        write_table(Path(table), CASES, corpus, outcomes)
    return Run(outcomes, all_jobs)


@pytest.mark.parametrize("case_id", [case.id for case in CASES])
def test_case(run: Run, case_id: str) -> None:
    """Stored (or refused with a named status); analysed as its clean twin, or ignored or
    failed for a named reason."""
    if case_id not in run.outcomes:
        missing = f"{BY_ID[case_id].shipped} is not installed (the dev extra has pydicom-data)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    found = problems(BY_ID[case_id], run.outcomes)
    assert not found, f"{case_id} ({BY_ID[case_id].expected}):\n" + "\n".join(found)


def test_no_job_has_an_exception_for_a_reason(run: Run) -> None:
    reasons = [j["reason"] for j in run.all_jobs if j["reason"]]
    assert reasons, "no ignored or failed job at all: the corpus lost its odd cases"
    bad = [r for r in reasons if EXCEPTION_LIKE.search(r)]
    assert not bad, bad
