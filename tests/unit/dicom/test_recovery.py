"""Start-up reconciliation: whole spool files without a row are indexed, junk is not."""

from __future__ import annotations

from pathlib import Path

import pytest
from cardiogate_phantoms import make_ct_series

from cardiogate.dicom.recovery import index_orphans
from cardiogate.dicom.spool import Spool
from cardiogate.store import Store


def test_orphans_are_indexed_once_and_junk_is_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.prepare()
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.create_schema()
    ds = make_ct_series(8, n_slices=1, rows=16, columns=16).datasets[0]
    rel = spool.relative_path(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    spool.absolute(rel).parent.mkdir(parents=True)
    ds.save_as(spool.absolute(rel), enforce_file_format=True)
    junk = spool.relative_path("1.2", "1.2.3", "1.2.3.4")
    spool.write(junk, [b"not DICOM"])

    assert index_orphans(spool, store) == 1
    row = store.get_instance(ds.SOPInstanceUID)
    assert row is not None
    assert (row.path, row.size_bytes) == (rel, spool.absolute(rel).stat().st_size)
    series = store.get_series(ds.SeriesInstanceUID)
    assert series is not None
    assert (series.Modality, series.instance_count) == ("CT", 1)
    assert store.get_instance("1.2.3.4") is None
    assert "could not be indexed" in caplog.text
    assert index_orphans(spool, store) == 0
