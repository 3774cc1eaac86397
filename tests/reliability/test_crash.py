"""kill -9 mid-series: every acknowledged instance survives; nothing is half-written."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pydicom
from cardiogate_phantoms import make_ct_series
from pynetdicom import AE

from cardiogate.store import Store
from peers import start_serve, stop_serve


def test_kill_9_mid_series_loses_no_acknowledged_instance(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ct = make_ct_series(41, n_slices=300, rows=128, columns=128)
    originals = {ds.SOPInstanceUID: ds for ds in ct.datasets}
    acknowledged: list[str] = []
    enough = threading.Event()

    server = start_serve(data_dir)

    def push() -> None:
        ae = AE(ae_title="PACS")
        ae.dimse_timeout = 5
        ae.add_requested_context(
            ct.datasets[0].SOPClassUID, ct.datasets[0].file_meta.TransferSyntaxUID
        )
        assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="CARDIOGATE")
        for ds in ct.datasets:
            if not assoc.is_established:
                return
            rsp = assoc.send_c_store(ds)
            if rsp.get("Status") == 0x0000:
                acknowledged.append(ds.SOPInstanceUID)
                if len(acknowledged) == 60:
                    enough.set()
        assoc.release()

    sender = threading.Thread(target=push)
    sender.start()
    assert enough.wait(60), server.log()
    stop_serve(server, kill=True)  # SIGKILL to the whole process group, mid-series
    sender.join(30)
    assert 60 <= len(acknowledged) < len(ct.datasets), "the kill did not land mid-series"

    restarted = start_serve(data_dir)
    try:
        spool = data_dir / "spool"
        assert list((spool / ".tmp").iterdir()) == []  # partial writes were cleared
        store = Store(f"sqlite:///{data_dir / 'cardiogate.db'}")
        for uid in acknowledged:
            row = store.get_instance(uid)
            assert row is not None, f"acknowledged instance {uid} has no row"
            assert (spool / row.path).is_file()
        # Whatever is on disk, acknowledged or not, is whole and byte-exact.
        files = sorted(spool.rglob("*.dcm"))
        assert len(files) >= len(acknowledged)
        for path in files:
            ds = pydicom.dcmread(path)
            assert np.array_equal(ds.pixel_array, originals[ds.SOPInstanceUID].pixel_array)
            assert store.get_instance(ds.SOPInstanceUID) is not None  # orphans re-indexed
        store.dispose()
    finally:
        assert stop_serve(restarted) == 0
