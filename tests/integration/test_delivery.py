"""Results delivered over C-STORE to a real Storage SCP (cardiogate's own listener playing
the PACS): both jobs end ``delivered`` and the SCP holds their SR, SEG and key images in the
source's study."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from delivery_peers import calcium_ct, outbox_rows, serve_delivering, stenosis_cine, wait_for_job
from peers import RunningSCP, ServeProcess, send, stop_serve


@pytest.fixture
def server(tmp_path: Path, pacs: RunningSCP) -> Iterator[ServeProcess]:
    running = serve_delivering(tmp_path, "PACS", pacs.port)
    yield running
    assert stop_serve(running) == 0


def test_reported_jobs_are_delivered_into_the_source_study(
    server: ServeProcess, pacs: RunningSCP
) -> None:
    ct, xa = calcium_ct(), stenosis_cine()
    assert send(server.dicom_port, ct) == [0] * len(ct)
    assert send(server.dicom_port, xa) == [0] * len(xa)

    for source in (ct, xa):
        job = wait_for_job(server, source[0].SeriesInstanceUID, ("delivered", "failed"))
        assert job["state"] == "delivered", job["reason"]

    rows = outbox_rows(server)
    assert {r["state"] for r in rows} == {"sent"}
    assert {r["destination"] for r in rows} == {f"PACS@127.0.0.1:{pacs.port}"}
    for row in rows:
        stored = pacs.store.get_instance(row["sop_instance_uid"])
        assert stored is not None, row
    ct_study = {s.Modality for s in pacs.store.series_of_study(ct[0].StudyInstanceUID)}
    xa_study = {s.Modality for s in pacs.store.series_of_study(xa[0].StudyInstanceUID)}
    assert {"SR", "SEG"} <= ct_study
    assert "SR" in xa_study
    # calcium: SEG, SR, a key image per artery with calcium (one here), summary page;
    # stenosis (a lesion): SR, key image, summary page
    assert len(rows) == 7

    metrics = httpx.get(server.base_url + "/metrics", timeout=5).text
    label = f'destination="PACS@127.0.0.1:{pacs.port}"'
    assert f'cardiogate_delivery_objects_total{{{label},outcome="sent"}} 7.0' in metrics
    assert "cardiogate_delivery_dead_letters 0.0" in metrics
