"""Series assembly: one quiet period after the last instance, exactly one complete series."""

from __future__ import annotations

import time
from pathlib import Path

from cardiogate.pipeline.assembler import SeriesAssembler
from cardiogate.synthetic import make_ct_series
from peers import send, start_scp

QUIET = 0.6


def test_series_over_two_associations_completes_once(tmp_path: Path) -> None:
    scp = start_scp(tmp_path, quiet_seconds=QUIET)
    assembler = SeriesAssembler(scp.store, QUIET, poll_seconds=0.05)
    try:
        ct = make_ct_series(21, n_slices=6, rows=32, columns=32)
        uid = ct.datasets[0].SeriesInstanceUID
        assembler.start()
        assert send(scp.port, ct.datasets[:3]) == [0] * 3
        time.sleep(QUIET / 3)
        assert send(scp.port, ct.datasets[3:]) == [0] * 3
        series = scp.store.get_series(uid)
        assert series is not None
        assert series.state == "receiving"  # the second association kept it open

        deadline = time.monotonic() + 10 * QUIET
        while scp.store.get_series(uid).state != "complete":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "series never completed"
            time.sleep(0.05)
        series = scp.store.get_series(uid)
        assert series is not None
        assert (series.instance_count, series.reopened_count) == (6, 0)
        assert series.completed_at is not None
        assert assembler.run_once() == []  # nothing completes twice
    finally:
        assembler.stop()
        scp.listener.stop(5)


def test_late_instance_reopens_a_complete_series(tmp_path: Path) -> None:
    scp = start_scp(tmp_path, quiet_seconds=QUIET)
    assembler = SeriesAssembler(scp.store, QUIET, poll_seconds=1)
    try:
        ct = make_ct_series(22, n_slices=3, rows=32, columns=32)
        uid = ct.datasets[0].SeriesInstanceUID
        assert send(scp.port, ct.datasets[:2]) == [0, 0]
        assert assembler.run_once() == []  # not quiet yet
        time.sleep(QUIET + 0.1)
        assert assembler.run_once() == [uid]
        assert send(scp.port, ct.datasets[2:]) == [0]
        series = scp.store.get_series(uid)
        assert series is not None
        assert (series.state, series.reopened_count, series.completed_at) == ("receiving", 1, None)
        time.sleep(QUIET + 0.1)
        assert assembler.run_once() == [uid]
        assert scp.store.get_series(uid).instance_count == 3  # type: ignore[union-attr]
    finally:
        scp.listener.stop(5)
