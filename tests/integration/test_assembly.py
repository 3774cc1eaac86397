"""Series assembly: one quiet period after the last instance, exactly one complete series.

Instances arrive over real associations (their receive times are the store's, real ones);
the assembler reads a clock the test sets, so quiet periods pass without sleeping."""

from __future__ import annotations

import threading
from pathlib import Path

from cardiogate_phantoms import make_ct_series

from cardiogate.pipeline.assembler import SeriesAssembler
from cardiogate.store.store import utcnow
from peers import send, start_scp
from store_records import Clock

QUIET = 10.0  # seconds of the test's clock, none of them waited


def test_series_over_two_associations_completes_once(tmp_path: Path) -> None:
    scp = start_scp(tmp_path, quiet_seconds=QUIET)
    clock = Clock()
    completions: list[list[str]] = []
    completed = threading.Event()

    def on_complete(uids: list[str]) -> None:
        completions.append(uids)
        completed.set()

    assembler = SeriesAssembler(scp.store, QUIET, 0.05, on_complete, clock=clock)
    try:
        ct = make_ct_series(21, n_slices=6, rows=32, columns=32)
        uid = ct.datasets[0].SeriesInstanceUID
        assembler.start()
        assert send(scp.port, ct.datasets[:3]) == [0] * 3
        assert send(scp.port, ct.datasets[3:]) == [0] * 3
        clock.now = utcnow()  # every instance is received: the quiet period starts
        clock.advance(QUIET / 3)
        assert assembler.run_once() == []
        series = scp.store.get_series(uid)
        assert series is not None
        assert series.state == "receiving"  # the second association kept it open

        clock.advance(QUIET)  # the polling thread completes it
        assert completed.wait(10), "series never completed"
        series = scp.store.get_series(uid)
        assert series is not None
        assert (series.state, series.instance_count, series.reopened_count) == ("complete", 6, 0)
        assert series.completed_at == clock.now
        assert assembler.run_once() == []  # nothing completes twice
        assert completions == [[uid]]
    finally:
        assembler.stop()
        scp.listener.stop(5)


def test_late_instance_reopens_a_complete_series(tmp_path: Path) -> None:
    scp = start_scp(tmp_path, quiet_seconds=QUIET)
    clock = Clock()
    assembler = SeriesAssembler(scp.store, QUIET, poll_seconds=1, clock=clock)
    try:
        ct = make_ct_series(22, n_slices=3, rows=32, columns=32)
        uid = ct.datasets[0].SeriesInstanceUID
        assert send(scp.port, ct.datasets[:2]) == [0, 0]
        clock.now = utcnow()
        assert assembler.run_once() == []  # not quiet yet
        clock.advance(QUIET + 0.1)
        assert assembler.run_once() == [uid]

        assert send(scp.port, ct.datasets[2:]) == [0]
        series = scp.store.get_series(uid)
        assert series is not None
        assert (series.state, series.reopened_count, series.completed_at) == ("receiving", 1, None)
        clock.now = utcnow()
        assert assembler.run_once() == []  # the late instance started the quiet period again
        clock.advance(QUIET + 0.1)
        assert assembler.run_once() == [uid]
        assert scp.store.get_series(uid).instance_count == 3  # type: ignore[union-attr]
    finally:
        scp.listener.stop(5)
