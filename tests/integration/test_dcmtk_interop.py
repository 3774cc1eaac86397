"""Interoperability with DCMTK peers: storescu (uncompressed and JPEG lossless) and echoscu."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import make_ct_series, make_xa_cine, write_series
from pydicom.uid import ExplicitVRLittleEndian, JPEGLosslessSV1

from peers import RunningSCP, dcmtk, start_scp

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=DCMTK_ENV, check=False
    )


def _storescu(
    port: int, target: Path, *options: str, calling_ae: str = "STORESCU"
) -> subprocess.CompletedProcess[str]:
    """storescu with timeouts so that a hung peer fails the test instead of stalling it."""
    return _run(
        [
            dcmtk("storescu"),
            "-v",
            "-aet",
            calling_ae,
            "-aec",
            "CARDIOGATE",
            "-to",
            "10",
            "-ta",
            "10",
        ]
        + ["-td", "30", *options, "127.0.0.1", str(port), str(target)]
    )


@pytest.fixture
def scp_allow_pacs(tmp_path: Path) -> Iterator[RunningSCP]:
    running = start_scp(tmp_path, allowed_calling_aets=["PACS"])
    yield running
    running.listener.stop(5)
    running.store.dispose()


@pytest.fixture
def outbox(tmp_path: Path) -> tuple[Path, dict[str, Path], str]:
    """A folder to send: CT slices 2-8 and an XA cine uncompressed, CT slice 1 as JPEG
    lossless. Returns (folder, {SOPInstanceUID: uncompressed source file}, JPEG SOP UID)."""
    source, folder = tmp_path / "source", tmp_path / "outbox"
    ct_paths = write_series(make_ct_series(11, n_slices=8, rows=128, columns=128), source / "ct")
    xa_paths = write_series(make_xa_cine(12, frames=4, rows=128, columns=128), source / "xa")
    (folder / "ct").mkdir(parents=True)
    (folder / "xa").mkdir()
    (folder / "jpeg").mkdir()
    for p in ct_paths[1:]:
        shutil.copy(p, folder / "ct" / p.name)
    shutil.copy(xa_paths[0], folder / "xa" / "XA00001.dcm")
    jpeg = folder / "jpeg" / "CT00001.dcm"
    result = _run([dcmtk("dcmcjpeg"), str(ct_paths[0]), str(jpeg)])
    assert result.returncode == 0, result.stderr
    jpeg_ds = pydicom.dcmread(jpeg, stop_before_pixels=True)
    assert jpeg_ds.file_meta.TransferSyntaxUID == JPEGLosslessSV1
    # Non-DICOM files in the tree are skipped through the scan pattern.
    (folder / "ct" / "truth.json").write_text("{}\n")
    sources = {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p
        for p in ct_paths + xa_paths
    }
    return folder, sources, str(jpeg_ds.SOPInstanceUID)


def test_storescu_sends_uncompressed_and_jpeg_lossless(
    scp: RunningSCP, outbox: tuple[Path, dict[str, Path], str]
) -> None:
    folder, sources, jpeg_uid = outbox
    result = _storescu(scp.port, folder, "+sd", "+r", "+sp", "*.dcm", "-xs")

    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert output.count("Received Store Response (Success)") == len(sources) == 9
    assert "Failed" not in output

    for sop_uid, source_path in sources.items():
        row = scp.store.get_instance(sop_uid)
        assert row is not None, f"no row for {sop_uid}"
        spool_file = scp.spool.absolute(row.path)
        assert spool_file.is_file()
        assert spool_file.stat().st_size == row.size_bytes
        stored = pydicom.dcmread(spool_file)
        original = pydicom.dcmread(source_path)
        assert stored.SOPInstanceUID == sop_uid
        assert stored.file_meta.MediaStorageSOPInstanceUID == sop_uid
        expected_ts = JPEGLosslessSV1 if sop_uid == jpeg_uid else ExplicitVRLittleEndian
        assert stored.file_meta.TransferSyntaxUID == expected_ts
        assert stored.pixel_array.dtype == original.pixel_array.dtype
        assert np.array_equal(stored.pixel_array, original.pixel_array), sop_uid

        if original.Modality == "XA":
            assert stored.pixel_array.shape == (4, 128, 128)
    assert len(list(scp.spool.files())) == 9


def test_echoscu_verification(scp: RunningSCP) -> None:
    result = _run(
        [dcmtk("echoscu"), "-v", "-aec", "CARDIOGATE", "-to", "10", "-ta", "10", "127.0.0.1"]
        + [str(scp.port)]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Received Echo Response (Success)" in result.stdout + result.stderr


def test_calling_ae_allowlist_with_storescu(scp_allow_pacs: RunningSCP, tmp_path: Path) -> None:
    paths = write_series(make_ct_series(13, n_slices=2, rows=64, columns=64), tmp_path / "ct")
    uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths]

    refused = _storescu(scp_allow_pacs.port, paths[0], calling_ae="NOTALLOWED")
    assert refused.returncode != 0
    assert "Association Rejected" in refused.stdout + refused.stderr
    assert all(scp_allow_pacs.store.get_instance(u) is None for u in uids)
    assert list(scp_allow_pacs.spool.files()) == []

    accepted = _storescu(
        scp_allow_pacs.port, tmp_path / "ct", "+sd", "+sp", "*.dcm", calling_ae="PACS"
    )
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    for u in uids:
        row = scp_allow_pacs.store.get_instance(u)
        assert row is not None
        assert scp_allow_pacs.spool.exists(row.path)
