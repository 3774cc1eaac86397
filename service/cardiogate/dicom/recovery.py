"""Start-up reconciliation of the spool with the store.

A crash between the rename of a file and the commit of its row leaves a whole file with no
row; the peer never got a success status for it and will send it again, but indexing it
now costs nothing and loses nothing.
"""

from __future__ import annotations

import logging

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from cardiogate.dicom.ingest import instance_record
from cardiogate.dicom.spool import Spool
from cardiogate.errors import CardiogateError
from cardiogate.store import Store

log = logging.getLogger(__name__)


def index_orphans(spool: Spool, store: Store) -> int:
    """Record every spool file that has no row; return how many were indexed."""
    known = store.known_paths()
    indexed = 0
    for rel in spool.files():
        if rel in known:
            continue
        try:
            path = spool.absolute(rel)
            ds = dcmread(path, stop_before_pixels=True)
            expected = spool.relative_path(
                ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
            )
            if expected != rel:
                raise CardiogateError("file name does not match its UIDs")
            record = instance_record(
                ds,
                ds.file_meta.TransferSyntaxUID,
                rel,
                path.stat().st_size,
                ds.file_meta.get("SourceApplicationEntityTitle"),
            )
            store.record_instance(record)
            indexed += 1
        except (OSError, InvalidDicomError, AttributeError, CardiogateError) as e:
            log.error("spool file %s could not be indexed: %s", rel, type(e).__name__)
    if indexed:
        log.warning("indexed %d spool file(s) that had no row (interrupted writes)", indexed)
    return indexed
