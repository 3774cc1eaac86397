"""Hostile and broken input: each gets its named outcome, and the SCP keeps serving."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from cardiogate_phantoms import make_ct_series, write_series
from pydicom.dataset import Dataset
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage

from peers import RunningSCP, send, start_scp

SUCCESS, OUT_OF_RESOURCES, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xC000


def _one_ct(seed: int) -> Dataset:
    return make_ct_series(seed, n_slices=1, rows=32, columns=32).datasets[0]


def _still_serving(scp: RunningSCP) -> None:
    ds = _one_ct(99)
    assert send(scp.port, [ds]) == [SUCCESS]
    assert scp.store.get_instance(ds.SOPInstanceUID) is not None


def _associate(port: int, calling: str) -> Any:
    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage)
    return ae.associate("127.0.0.1", port, ae_title="CARDIOGATE")


def _files_outside_spool(root: Path, spool: Path) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and not p.is_relative_to(spool) and not p.name.startswith("cardiogate.db")
    ]


@pytest.mark.parametrize("missing", ["StudyInstanceUID", "SeriesInstanceUID"])
def test_dataset_missing_a_uid_cannot_be_understood(scp: RunningSCP, missing: str) -> None:
    ds = _one_ct(10)
    delattr(ds, missing)
    assoc = _associate(scp.port, "TESTSCU")
    rsp = assoc.send_c_store(ds)
    assoc.release()
    assert rsp.Status == CANNOT_UNDERSTAND
    assert missing in rsp.ErrorComment
    assert list(scp.spool.files()) == []
    _still_serving(scp)


def test_path_traversal_uid_never_leaves_the_spool(scp: RunningSCP, tmp_path: Path) -> None:
    ds = _one_ct(11)
    ds.SOPInstanceUID = "../../../escaped"
    ds.SeriesInstanceUID = "../.."
    assoc = _associate(scp.port, "TESTSCU")
    rsp = assoc.send_c_store(ds)
    assoc.release()
    assert rsp.Status == CANNOT_UNDERSTAND
    assert "escaped" not in rsp.get("ErrorComment", "")
    assert _files_outside_spool(tmp_path, scp.spool.root) == []
    assert list(scp.spool.files()) == []
    _still_serving(scp)


def test_dataset_that_does_not_parse(
    scp: RunningSCP, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Send the file's bytes as they are (pynetdicom would otherwise decode and re-encode).
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    [path] = write_series(make_ct_series(12, n_slices=1, rows=32, columns=32), tmp_path / "in")[:1]
    data = bytearray(path.read_bytes())
    pixel_tag = data.rfind(b"\xe0\x7f\x10\x00")
    data[pixel_tag + 8 : pixel_tag + 12] = (10**9).to_bytes(4, "little")  # runs past the end
    path.write_bytes(bytes(data))
    assoc = _associate(scp.port, "TESTSCU")
    rsp = assoc.send_c_store(path)
    assoc.release()
    assert rsp.Status == CANNOT_UNDERSTAND
    assert "pixel data is shorter than its declared length" in rsp.ErrorComment
    assert list(scp.spool.files()) == []
    _still_serving(scp)


def test_truncated_stream_stores_nothing(scp: RunningSCP) -> None:
    ds = make_ct_series(13, n_slices=1, rows=256, columns=256).datasets[0]
    ae = AE(ae_title="TESTSCU")
    ae.dimse_timeout = 2
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="CARDIOGATE")
    raw = assoc.dul.socket.socket
    original_send = assoc.dul.socket.send

    def cut_after_half(data: bytes) -> None:
        if len(data) > 10_000:  # the P-DATA carrying the data set: send half, then drop
            raw.sendall(data[: len(data) // 2])
            raw.shutdown(socket.SHUT_RDWR)
            return
        original_send(data)

    assoc.dul.socket.send = cut_after_half
    rsp = assoc.send_c_store(ds)
    assert "Status" not in rsp  # no response: the peer vanished mid-transfer
    assoc.abort()
    assert scp.store.get_instance(ds.SOPInstanceUID) is None
    assert list(scp.spool.files()) == []
    assert list(scp.spool.tmp.iterdir()) == []
    _still_serving(scp)


def _rejection(assoc: object) -> tuple[int, int, int]:
    assert assoc.is_rejected
    rj = assoc.acceptor.primitive
    return (rj.result, rj.result_source, rj.diagnostic)


def test_unknown_calling_ae_is_rejected_permanently(tmp_path: Path) -> None:
    scp = start_scp(tmp_path, allowed_calling_aets=["PACS"])
    try:
        assert _rejection(_associate(scp.port, "STRANGER")) == (0x01, 0x01, 0x03)
        assert send(scp.port, [_one_ct(14)], calling_ae="PACS") == [SUCCESS]
    finally:
        scp.listener.stop(5)


def test_low_disk_rejects_transiently(tmp_path: Path) -> None:
    scp = start_scp(tmp_path, min_free_disk_mb=10**12)
    try:
        assert _rejection(_associate(scp.port, "PACS")) == (0x02, 0x03, 0x01)
        assert list(scp.spool.files()) == []
    finally:
        scp.listener.stop(5)


def test_association_limit_rejects_transiently_then_recovers(tmp_path: Path) -> None:
    scp = start_scp(tmp_path, max_associations=1)
    try:
        first = _associate(scp.port, "PACS")
        assert first.is_established
        assert _rejection(_associate(scp.port, "PACS")) == (0x02, 0x03, 0x02)
        first.release()
        assert send(scp.port, [_one_ct(15)], calling_ae="PACS") == [SUCCESS]
        # the SCP frees the slot when its association thread ends, just after the release
        deadline = time.monotonic() + 5
        while scp.listener.slots.active and time.monotonic() < deadline:
            time.sleep(0.02)
        assert scp.listener.slots.active == 0
    finally:
        scp.listener.stop(5)


def test_a_refused_instance_does_not_end_the_association(scp: RunningSCP) -> None:
    ds = _one_ct(16)
    assoc = _associate(scp.port, "TESTSCU")
    bad = _one_ct(17)
    del bad.StudyInstanceUID
    assert assoc.send_c_store(bad).Status == CANNOT_UNDERSTAND
    assert assoc.send_c_store(ds).Status == SUCCESS  # same association, next instance fine
    assoc.release()


def test_patient_identifiers_never_reach_the_log(
    scp: RunningSCP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good, bad = _one_ct(18), _one_ct(19)
    for ds in (good, bad):
        ds.PatientName = "DOE^JANE"
        ds.PatientID = "MRN-4711"
        ds.PatientBirthDate = "19700231X"  # invalid: pydicom would quote it when validating
    del bad.SeriesInstanceUID
    assoc = _associate(scp.port, "TESTSCU")
    assert assoc.send_c_store(good).Status == SUCCESS
    assert assoc.send_c_store(bad).Status == CANNOT_UNDERSTAND
    assoc.release()
    assert "C-STORE refused" in caplog.text  # the failure was logged ...
    for identifier in ("DOE", "JANE", "MRN-4711", "19700231"):
        assert identifier not in caplog.text  # ... without the patient


def test_disk_trouble_mid_association_is_out_of_resources(scp: RunningSCP) -> None:
    first, second, third = _one_ct(20), _one_ct(21), _one_ct(22)
    assoc = _associate(scp.port, "TESTSCU")
    assert assoc.send_c_store(first).Status == SUCCESS
    scp.listener.handler.min_free_bytes = 10**18  # free space falls below the minimum
    assert assoc.send_c_store(second).Status == OUT_OF_RESOURCES
    scp.listener.handler.min_free_bytes = 1
    study_dir = scp.spool.root / third.StudyInstanceUID
    study_dir.write_bytes(b"a file where the study directory must go")  # the write fails
    rsp = assoc.send_c_store(third)
    assert rsp.Status == OUT_OF_RESOURCES
    assert "cannot write to the spool" in rsp.ErrorComment
    assert assoc.is_established  # the association survives both
    assoc.release()
    assert scp.store.get_instance(second.SOPInstanceUID) is None
    assert scp.store.get_instance(third.SOPInstanceUID) is None
    assert list(scp.spool.tmp.iterdir()) == []
