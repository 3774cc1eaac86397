"""Ten times more simultaneous associations than the limit, against ``cardiogate serve``:
the excess is rejected transiently with 'local limit exceeded' (PS3.8 9.3.4), the accepted
ones store their instances, and a new association is accepted right after."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from cardiogate_phantoms import make_ct_series
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from cardiogate.dicom.status import Reject, Status
from peers import send, start_serve, stop_serve

LIMIT, CALLERS = 4, 40


def _associate(port: int) -> Any:
    ae = AE(ae_title="FLOOD")
    ae.acse_timeout = 30
    ae.add_requested_context(CTImageStorage)
    return ae.associate("127.0.0.1", port, ae_title="CARDIOGATE")


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_flood_rejects_the_excess_transiently_and_recovers(tmp_path: Path, processes: int) -> None:
    server = start_serve(
        tmp_path / "data",
        env={
            "CARDIOGATE_MAX_ASSOCIATIONS": str(LIMIT),
            "CARDIOGATE_LISTENER_PROCESSES": str(processes),
        },
    )
    datasets = make_ct_series(31, n_slices=CALLERS, rows=16, columns=16).datasets
    tried = threading.Barrier(CALLERS, timeout=150)
    outcomes: list[tuple[str, Any]] = [("none", None)] * CALLERS

    def caller(i: int) -> None:
        assoc = _associate(server.dicom_port)
        try:
            rj = assoc.acceptor.primitive if assoc.is_rejected else None
            if rj is not None:
                outcomes[i] = ("rejected", (rj.result, rj.result_source, rj.diagnostic))
            elif not assoc.is_established:
                outcomes[i] = ("aborted", None)  # neither accepted nor rejected: a failure
        finally:
            tried.wait()  # accepted ones hold their slot until every caller has tried
        if assoc.is_established:
            outcomes[i] = ("stored", int(assoc.send_c_store(datasets[i]).Status))
            assoc.release()

    try:
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        stored = [v for kind, v in outcomes if kind == "stored"]
        rejected = [v for kind, v in outcomes if kind == "rejected"]
        assert len(stored) == LIMIT, outcomes
        assert stored == [Status.SUCCESS] * LIMIT
        assert rejected == [Reject.LOCAL_LIMIT_EXCEEDED] * (CALLERS - LIMIT), outcomes
        late = make_ct_series(32, n_slices=1, rows=16, columns=16).datasets
        assert send(server.dicom_port, late) == [Status.SUCCESS]  # at once: slots came back
    finally:
        stop_serve(server)
