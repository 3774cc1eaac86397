"""The C-STORE handler: parse, validate, spool durably, record, then answer.

Status 0x0000 goes back only after the file is fsynced and renamed into place and its row
is committed. The bytes are written as received, behind a new file meta header; the data
set is parsed (without converting values) only to validate it and read the attributes
later stages need.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from dataclasses import dataclass
from io import BytesIO
from time import perf_counter
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from cardiogate.dicom.spool import Spool
from cardiogate.dicom.status import Status
from cardiogate.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from cardiogate.errors import CardiogateError, DatasetError, InvalidUIDError, SpoolError
from cardiogate.metrics import IngestSink
from cardiogate.store import InstanceRecord, Store

log = logging.getLogger(__name__)

PREAMBLE = b"\x00" * 128 + b"DICM"
UNDEFINED_LENGTH = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    label: str
    comment: str = ""


def parse_dataset(stream: bytes | memoryview, transfer_syntax: UID) -> Dataset:
    """Parse a received data set without converting values; raise DatasetError if malformed."""
    try:
        data = stream
        if transfer_syntax == DeflatedExplicitVRLittleEndian:
            data = zlib.decompress(stream, -zlib.MAX_WBITS)
        fp = BytesIO(data)
        ds = read_dataset(fp, transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian)
        if fp.tell() != len(data):
            raise DatasetError("trailing bytes after the data set")
        # pydicom accepts a value shorter than its declared length; a truncated data set
        # must not be acknowledged, so compare before converting anything.
        for tag, raw in ds._dict.items():
            if (
                isinstance(raw, RawDataElement)
                and raw.length != UNDEFINED_LENGTH
                and raw.value is not None
                and len(raw.value) != raw.length
            ):
                raise DatasetError(f"element {tag} is shorter than its declared length")
        for elem in ds:  # convert every top-level value so a malformed one fails here
            _ = elem.value
    except DatasetError:
        raise
    except Exception as e:  # pydicom raises many types for malformed input
        raise DatasetError(f"data set does not parse ({type(e).__name__})") from e
    return ds


def _text(ds: Dataset, keyword: str, limit: int = 64) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue | list | tuple):
        value = "\\".join(str(v) for v in value)
    return str(value)[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


def instance_record(
    ds: Dataset,
    transfer_syntax: UID,
    path: str,
    size_bytes: int,
    sha256: str,
    calling_ae_title: str | None,
) -> InstanceRecord:
    """The row for an instance, from its parsed data set."""
    return InstanceRecord(
        StudyInstanceUID=ds.StudyInstanceUID,
        SeriesInstanceUID=ds.SeriesInstanceUID,
        SOPInstanceUID=ds.SOPInstanceUID,
        SOPClassUID=str(ds.SOPClassUID),
        TransferSyntaxUID=str(transfer_syntax),
        Modality=_text(ds, "Modality", 16),
        InstanceNumber=_int(ds, "InstanceNumber"),
        NumberOfFrames=_int(ds, "NumberOfFrames") or 1,
        SeriesNumber=_int(ds, "SeriesNumber"),
        SeriesDescription=_text(ds, "SeriesDescription"),
        BodyPartExamined=_text(ds, "BodyPartExamined", 16),
        ProtocolName=_text(ds, "ProtocolName"),
        ImageType=_text(ds, "ImageType", 256),
        ContrastBolusAgent=_text(ds, "ContrastBolusAgent"),
        SliceThickness=_text(ds, "SliceThickness", 16),
        path=path,
        size_bytes=size_bytes,
        sha256=sha256,
        calling_ae_title=calling_ae_title,
    )


def file_meta_header(ds: Dataset, transfer_syntax: UID, calling_ae_title: str) -> bytes:
    """Preamble, prefix and File Meta Information for an instance (PS3.10 7.1)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    if calling_ae_title:
        meta.SourceApplicationEntityTitle = calling_ae_title
    fp = BytesIO()
    fp.write(PREAMBLE)
    write_file_meta_info(fp, meta, enforce_standard=True)  # type: ignore[arg-type]
    return fp.getvalue()


class StoreSCPHandler:
    """Handles EVT_C_STORE for one listener process."""

    def __init__(self, spool: Spool, store: Store, sink: IngestSink, min_free_bytes: int) -> None:
        self.spool = spool
        self.store = store
        self.sink = sink
        self.min_free_bytes = min_free_bytes

    def __call__(self, event: Any) -> Dataset:
        started = perf_counter()
        modality: str | None = None
        nbytes = 0
        try:
            stream: memoryview = event.request.DataSet.getbuffer()
            nbytes = len(stream)
            modality, outcome = self._handle(event, stream)
        except (DatasetError, InvalidUIDError) as e:
            outcome = Outcome(Status.CANNOT_UNDERSTAND, "cannot_understand", str(e))
        except CardiogateError as e:  # spool or database trouble: the peer should retry
            outcome = Outcome(Status.OUT_OF_RESOURCES, "out_of_resources", str(e))
        except Exception as e:  # the guard: an unexpected error never kills the association
            log.exception("C-STORE handler failed unexpectedly")
            outcome = Outcome(Status.OUT_OF_RESOURCES, "out_of_resources", type(e).__name__)
        finally:
            stream = None  # type: ignore[assignment]  # release the buffer view
        if outcome.status != Status.SUCCESS:
            log.warning(
                "C-STORE refused with %s (0x%04X): %s; calling AE %r",
                outcome.status.name,
                outcome.status,
                outcome.comment,
                event.assoc.requestor.ae_title,
            )
        self.sink.instance(modality, outcome.label, nbytes, perf_counter() - started)
        rsp = Dataset()
        rsp.Status = int(outcome.status)
        if outcome.comment:
            rsp.ErrorComment = outcome.comment[:64]
        return rsp

    def _handle(self, event: Any, stream: memoryview) -> tuple[str | None, Outcome]:
        transfer_syntax = UID(event.context.transfer_syntax)
        ds = parse_dataset(stream, transfer_syntax)
        modality = _text(ds, "Modality", 16)
        rel = self.spool.relative_path(
            ds.get("StudyInstanceUID"), ds.get("SeriesInstanceUID"), ds.get("SOPInstanceUID")
        )
        if not ds.get("SOPClassUID"):
            raise DatasetError("SOPClassUID is missing")
        if self.min_free_bytes and self.spool.free_bytes() < self.min_free_bytes:
            raise SpoolError("free disk space is below the configured minimum")

        digest = hashlib.sha256(stream).hexdigest()
        existing = self.store.get_instance(ds.SOPInstanceUID)
        if existing is not None and existing.sha256 == digest and self.spool.exists(existing.path):
            log.debug("duplicate of stored instance %s; nothing to do", ds.SOPInstanceUID)
            return modality, Outcome(Status.SUCCESS, "duplicate")

        calling = str(event.assoc.requestor.ae_title).strip()
        header = file_meta_header(ds, transfer_syntax, calling)
        self.spool.write(rel, (header, stream))
        record = instance_record(
            ds, transfer_syntax, rel, len(header) + len(stream), digest, calling or None
        )
        reopened = self.store.record_instance(record)
        if reopened:
            log.info("late instance re-opened series %s", ds.SeriesInstanceUID)
        if existing is None:
            return modality, Outcome(Status.SUCCESS, "stored")
        if existing.path != rel:
            self.spool.remove(existing.path)
        log.warning(
            "instance %s received again with different content; the newer replaced the older",
            ds.SOPInstanceUID,
        )
        return modality, Outcome(Status.SUCCESS, "replaced")
