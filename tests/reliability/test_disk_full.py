"""The spool on a small tmpfs filled with ballast: Out of Resources when a write itself
fails, transient congestion while free space is under the minimum, nothing partial or
corrupt, and normal service as soon as the ballast is gone."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from cardiogate_phantoms import make_ct_series
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from cardiogate.dicom.status import Reject, Status
from cardiogate.store import Store
from peers import send, start_serve, stop_serve

MIB = 2**20


@pytest.fixture
def small_spool(tmp_path: Path) -> Iterator[Path]:
    """data/spool as an 8 MiB tmpfs; skipped where mounting is not permitted."""
    spool = tmp_path / "data" / "spool"
    spool.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(spool)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {mounted.stderr.decode().strip()}")
    try:
        yield spool
    finally:
        subprocess.run(["umount", "-l", str(spool)], check=False)


def _fill_leaving(spool: Path, free_bytes: int) -> Path:
    ballast = spool / "ballast"
    ballast.unlink(missing_ok=True)
    size = shutil.disk_usage(spool).free - free_bytes
    with ballast.open("wb") as f:
        f.write(b"\0" * max(0, size))
    return ballast


@pytest.mark.slow
def test_a_full_spool_refuses_then_recovers_and_keeps_what_it_had(small_spool: Path) -> None:
    server = start_serve(small_spool.parent, env={"CARDIOGATE_MIN_FREE_DISK_MB": "1"})
    try:
        kept = make_ct_series(50, n_slices=3, rows=64, columns=64).datasets
        assert send(server.dicom_port, kept) == [Status.SUCCESS] * 3
        big = make_ct_series(51, n_slices=1, rows=1024, columns=1024).datasets  # 2 MiB
        ballast = _fill_leaving(small_spool, int(1.5 * MIB))  # admitted, but it won't fit
        assert send(server.dicom_port, big) == [Status.OUT_OF_RESOURCES]
        assert list((small_spool / ".tmp").iterdir()) == []
        assert not any(small_spool.rglob(f"{big[0].SOPInstanceUID}.dcm"))
        store = Store(f"sqlite:///{small_spool.parent / 'cardiogate.db'}")
        assert store.get_instance(big[0].SOPInstanceUID) is None  # no row for it either
        store.dispose()

        _fill_leaving(small_spool, MIB // 2)  # under the minimum: refused at the door
        ae = AE(ae_title="PACS")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="CARDIOGATE")
        assert assoc.is_rejected
        rj = assoc.acceptor.primitive
        assert (rj.result, rj.result_source, rj.diagnostic) == Reject.TEMPORARY_CONGESTION

        ballast.unlink()
        assert send(server.dicom_port, big) == [Status.SUCCESS]
        for ds in kept:  # what was acknowledged before the disk filled is intact
            [path] = small_spool.rglob(f"{ds.SOPInstanceUID}.dcm")
            stored = pydicom.dcmread(path)
            assert stored.PixelData == ds.PixelData
            assert stored.SOPInstanceUID == ds.SOPInstanceUID
    finally:
        stop_serve(server)
