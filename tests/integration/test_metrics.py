"""``/metrics`` of a running ``cardiogate serve`` that delivers one calcium job to a real
Storage SCP: queue depth by state, turnaround by task, readiness, and no patient data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from delivery_peers import calcium_ct, serve_delivering, wait_for_job
from peers import RunningSCP, ServeProcess, send, stop_serve

QUIET_SECONDS = 1.0  # serve_delivering's CARDIOGATE_QUIET_SECONDS
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def server(tmp_path: Path, pacs: RunningSCP) -> Iterator[ServeProcess]:
    running = serve_delivering(tmp_path, "PACS", pacs.port)
    yield running
    assert stop_serve(running) == 0


def scrape(server: ServeProcess) -> tuple[str, Samples]:
    """The exposition text and its samples, parsed by prometheus_client's own parser."""
    text = httpx.get(server.base_url + "/metrics", timeout=5).text
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def jobs_by_state(samples: Samples) -> dict[str, float]:
    return {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "cardiogate_jobs_by_state"
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_a_delivered_job_shows_in_depth_turnaround_and_readiness(server: ServeProcess) -> None:
    _, before = scrape(server)
    assert sample(before, "cardiogate_ready") == 1.0
    assert set(jobs_by_state(before).values()) == {0.0}
    assert sample(before, "cardiogate_job_turnaround_seconds_count", task="calcium") is None

    ct = calcium_ct()
    sent_at = time.monotonic()
    assert send(server.dicom_port, ct) == [0] * len(ct)
    job = wait_for_job(server, ct[0].SeriesInstanceUID, ("delivered", "failed"))
    assert job["state"] == "delivered", job["reason"]
    elapsed = time.monotonic() - sent_at

    deadline = time.monotonic() + 10  # the depth is counted at most every 2 s
    while True:
        text, after = scrape(server)
        if jobs_by_state(after).get("delivered") == 1.0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert jobs_by_state(after) == {
        "queued": 0.0,
        "running": 0.0,
        "reported": 0.0,
        "delivered": 1.0,
        "failed": 0.0,
        "ignored": 0.0,
    }

    turnaround = "cardiogate_job_turnaround_seconds"
    assert sample(after, f"{turnaround}_count", task="calcium") == 1.0
    assert sample(after, f"{turnaround}_count", task="stenosis") is None
    seconds = sample(after, f"{turnaround}_sum", task="calcium")
    assert seconds is not None
    # the series waits out the quiet period before its job exists; the whole path took
    # no longer than the test watched it take
    assert QUIET_SECONDS <= seconds <= elapsed + 1.0
    reported = "cardiogate_job_received_to_reported_seconds"
    assert sample(after, f"{reported}_count", task="calcium") == 1.0
    to_report = sample(after, f"{reported}_sum", task="calcium")
    assert to_report is not None
    assert QUIET_SECONDS <= to_report <= seconds
    assert sample(after, "cardiogate_delivery_pending") == 0.0
    assert sample(after, "cardiogate_ready") == 1.0

    for uid in (ct[0].StudyInstanceUID, ct[0].SeriesInstanceUID, ct[0].SOPInstanceUID):
        assert uid not in text
    for identifier in (ct[0].PatientID, ct[0].PatientName, ct[0].PatientBirthDate):
        assert str(identifier) not in text
