"""A real pynetdicom SCU against our Storage SCP on loopback: statuses, files, rows."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import make_ct_series, make_xa_cine
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)
from pynetdicom import AE
from pynetdicom.sop_class import BasicTextSRStorage, Verification

from cardiogate.dicom.uids import IMPLEMENTATION_CLASS_UID
from peers import RunningSCP, send

SUCCESS = 0x0000


def _text_sr(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = BasicTextSRStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "SR"
    ds.SeriesNumber = 900
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.TextValue = "synthetic report"
    ds.ContentSequence = [item]
    return ds


def test_echo(scp: RunningSCP) -> None:
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="CARDIOGATE")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == SUCCESS
    assoc.release()


def test_store_ct_xa_and_sr_lands_as_files_and_rows(scp: RunningSCP) -> None:
    ct = make_ct_series(1, n_slices=5, rows=64, columns=64)
    xa = make_xa_cine(1, frames=6, rows=64, columns=64)
    sr = _text_sr(ct.datasets[0].StudyInstanceUID)
    datasets = [*ct.datasets, *xa.datasets, sr]

    assert send(scp.port, datasets) == [SUCCESS] * len(datasets)

    for ds in datasets:
        row = scp.store.get_instance(ds.SOPInstanceUID)
        assert row is not None
        stored = pydicom.dcmread(scp.spool.absolute(row.path))
        assert stored.SOPInstanceUID == ds.SOPInstanceUID
        assert stored.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert stored.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
        assert stored.file_meta.SourceApplicationEntityTitle == "TESTSCU"
        if "PixelData" in ds:
            assert np.array_equal(stored.pixel_array, ds.pixel_array)
    xa_series = scp.store.get_series(xa.datasets[0].SeriesInstanceUID)
    assert xa_series is not None
    assert (xa_series.Modality, xa_series.instance_count, xa_series.frame_count) == ("XA", 1, 6)
    ct_series = scp.store.get_series(ct.datasets[0].SeriesInstanceUID)
    assert ct_series is not None
    assert (ct_series.instance_count, ct_series.state) == (5, "receiving")
    study = scp.store.get_study(ct.datasets[0].StudyInstanceUID)
    assert study is not None
    assert study.modalities == ["CT", "SR", "XA"]


@pytest.mark.parametrize(
    "transfer_syntax", [ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian]
)
def test_stored_bytes_keep_the_negotiated_transfer_syntax(
    scp: RunningSCP, transfer_syntax: str
) -> None:
    ds = make_ct_series(2, n_slices=1, rows=32, columns=32).datasets[0]
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    assert send(scp.port, [ds]) == [SUCCESS]
    row = scp.store.get_instance(ds.SOPInstanceUID)
    assert row is not None
    stored = pydicom.dcmread(scp.spool.absolute(row.path))
    assert stored.file_meta.TransferSyntaxUID == transfer_syntax
    assert np.array_equal(stored.pixel_array, ds.pixel_array)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_spooled_files_pass_dciodvfy(scp: RunningSCP) -> None:
    ct = make_ct_series(6, n_slices=1, rows=32, columns=32).datasets[0]
    xa = make_xa_cine(6, frames=2, rows=32, columns=32).datasets[0]
    assert send(scp.port, [ct, xa]) == [SUCCESS, SUCCESS]
    for ds in (ct, xa):
        path = scp.spool.absolute(scp.store.get_instance(ds.SOPInstanceUID).path)  # type: ignore[union-attr]
        result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
        assert errors == [], result.stderr


def test_identical_duplicate_is_a_noop(scp: RunningSCP) -> None:
    ds = make_ct_series(3, n_slices=1, rows=32, columns=32).datasets[0]
    assert send(scp.port, [ds]) == [SUCCESS]
    path = scp.spool.absolute(scp.store.get_instance(ds.SOPInstanceUID).path)  # type: ignore[union-attr]
    first_mtime = path.stat().st_mtime_ns
    assert send(scp.port, [ds]) == [SUCCESS]
    assert path.stat().st_mtime_ns == first_mtime
    series = scp.store.get_series(ds.SeriesInstanceUID)
    assert series is not None
    assert series.instance_count == 1


def test_changed_duplicate_replaces_the_older(
    scp: RunningSCP, caplog: pytest.LogCaptureFixture
) -> None:
    ds = make_ct_series(4, n_slices=1, rows=32, columns=32).datasets[0]
    assert send(scp.port, [ds]) == [SUCCESS]
    ds.SeriesDescription = "corrected"
    assert send(scp.port, [ds]) == [SUCCESS]
    row = scp.store.get_instance(ds.SOPInstanceUID)
    assert row is not None
    assert pydicom.dcmread(scp.spool.absolute(row.path)).SeriesDescription == "corrected"
    assert "replaced the older" in caplog.text


def test_reused_uid_in_another_series_moves_the_instance(scp: RunningSCP) -> None:
    ds = make_ct_series(5, n_slices=1, rows=32, columns=32).datasets[0]
    assert send(scp.port, [ds]) == [SUCCESS]
    old = scp.spool.absolute(scp.store.get_instance(ds.SOPInstanceUID).path)  # type: ignore[union-attr]
    ds.SeriesInstanceUID = generate_uid()
    assert send(scp.port, [ds]) == [SUCCESS]
    row = scp.store.get_instance(ds.SOPInstanceUID)
    assert row is not None
    assert row.SeriesInstanceUID == ds.SeriesInstanceUID
    assert scp.spool.absolute(row.path).is_file()
    assert not old.exists()
    assert len(list(scp.spool.files())) == 1
