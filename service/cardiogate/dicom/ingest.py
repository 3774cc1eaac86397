"""The C-STORE handler: parse, validate, spool durably, record, then answer.

Status 0x0000 goes back only after the file is fsynced and renamed into place and its row
is committed. The bytes are written as received, behind a new file meta header; the data
set is parsed (without converting values) only to validate it and read the attributes
later stages need. An instance received again is a duplicate when its bytes, or failing
that its decoded content (:mod:`cardiogate.dicom.content`), equal the stored file's; only
different content replaces the stored file.
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass
from io import BytesIO
from time import perf_counter
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from cardiogate.dicom.content import compare_with_stored
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


ERROR_COMMENT_LENGTH = 64  # Error Comment (0000,0902) is LO: 64 characters (PS3.5 6.2)


def error_comment(text: str) -> str:
    """``text`` as an Error Comment (PS3.7 E.1): one line of ASCII without backslashes,
    at most 64 characters, shortened after the last whole word that fits (a single word
    longer than that is cut at 64)."""
    line = " ".join(text.replace("\\", "/").split())
    line = line.encode("ascii", "replace").decode("ascii")
    if len(line) <= ERROR_COMMENT_LENGTH:
        return line
    cut = line.rfind(" ", 0, ERROR_COMMENT_LENGTH + 1)
    if cut <= 0:
        return line[:ERROR_COMMENT_LENGTH]
    return line[:cut].rstrip(" ,;:-(")


class _StrictReader(BytesIO):
    """Remembers a partial read. pydicom treats a short read as the end of the data set,
    silently, so a stream cut inside an element header or value would otherwise parse."""

    partial = False

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        if size is not None and 0 < len(data) < size:
            self.partial = True
        return data


PIXEL_TAGS = frozenset((0x7FE00008, 0x7FE00009, 0x7FE00010))  # Float, DoubleFloat, PixelData


def _at_pixels(tag: int, vr: str | None, length: int) -> bool:
    return tag in PIXEL_TAGS


def _skip_pixels(fp: _StrictReader, size: int, transfer_syntax: UID) -> None:
    """Check the pixel element's declared length against the bytes present and skip it.

    Raises DatasetError when the stream ends before the value does. Encapsulated (undefined
    length) pixel data is walked by pydicom instead, since it holds its own item lengths.
    """
    start = fp.tell()
    head = fp.read(12)
    order = "<" if transfer_syntax.is_little_endian else ">"
    if transfer_syntax.is_implicit_VR:
        header, (length,) = 8, struct.unpack(order + "I", head[4:8])
    else:
        header, (length,) = 12, struct.unpack(order + "I", head[8:12])
    if length == UNDEFINED_LENGTH:
        fp.seek(start)
        read_dataset(fp, transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian)
        return
    if start + header + length > size:
        raise DatasetError("pixel data is shorter than its declared length")
    fp.seek(start + header + length)


def parse_dataset(stream: bytes | memoryview, transfer_syntax: UID) -> Dataset:
    """Parse a received data set without converting values; raise DatasetError if malformed.

    Every element header is read (sequences included) and each value's length is checked
    against the bytes present, which catches truncated and garbled streams. The pixel data
    value itself is skipped, not copied; values are converted only when a caller reads them.
    """
    implicit, little = transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian
    try:
        data = stream
        if transfer_syntax == DeflatedExplicitVRLittleEndian:
            data = zlib.decompress(stream, -zlib.MAX_WBITS)
        fp = _StrictReader(data)
        ds = read_dataset(fp, implicit, little, stop_when=_at_pixels)
        if fp.tell() < len(data):
            _skip_pixels(fp, len(data), transfer_syntax)
            ds.update(read_dataset(fp, implicit, little))  # anything after the pixels
    except DatasetError:
        raise
    except Exception as e:  # pydicom raises many types for malformed input
        raise DatasetError(f"data set does not parse ({type(e).__name__})") from e
    if fp.partial:
        raise DatasetError("data set is truncated: an element is shorter than its header says")
    return ds


def header_text(ds: Dataset, keyword: str, limit: int = 64) -> str | None:
    """An attribute's value as text, read from the raw bytes where they are plain ASCII.

    pydicom's general value conversion costs ~30 us an element; this runs a dozen times for
    every received instance. Multiple values keep their backslash separators.
    """
    tag = tag_for_keyword(keyword)
    raw = None if tag is None else ds._dict.get(BaseTag(tag))
    if raw is None:
        return None
    if isinstance(raw, RawDataElement) and isinstance(raw.value, bytes) and raw.value.isascii():
        text = raw.value.decode("ascii").strip(" \x00")
    else:  # another character set, or already converted: let pydicom decode it
        value = ds[keyword].value
        if value is None:
            return None
        text = "\\".join(str(v) for v in value) if isinstance(value, MultiValue) else str(value)
    return text[:limit] or None


UID_READ = 65  # one more than a UID holds (PS3.5 9.1): an overlong one is refused, not cut

IS_MIN, IS_MAX = -(2**31), 2**31 - 1  # an Integer String's values (PS3.5 6.2)


def header_int(ds: Dataset, keyword: str) -> int | None:
    """An IS attribute's first value; None when absent, malformed or out of the IS range
    (a database integer column would refuse it, and the instance with it)."""
    text = header_text(ds, keyword)
    if text is None:
        return None
    try:
        value = int(text.split("\\")[0])
    except ValueError:
        return None
    return value if IS_MIN <= value <= IS_MAX else None


def instance_record(
    ds: Dataset,
    transfer_syntax: UID,
    path: str,
    size_bytes: int,
    calling_ae_title: str | None,
) -> InstanceRecord:
    """The row for an instance, from its parsed data set."""
    return InstanceRecord(
        StudyInstanceUID=header_text(ds, "StudyInstanceUID") or "",
        SeriesInstanceUID=header_text(ds, "SeriesInstanceUID") or "",
        SOPInstanceUID=header_text(ds, "SOPInstanceUID") or "",
        SOPClassUID=header_text(ds, "SOPClassUID") or "",
        TransferSyntaxUID=str(transfer_syntax),
        Modality=header_text(ds, "Modality", 16),
        InstanceNumber=header_int(ds, "InstanceNumber"),
        NumberOfFrames=header_int(ds, "NumberOfFrames") or 1,
        SeriesNumber=header_int(ds, "SeriesNumber"),
        SeriesDescription=header_text(ds, "SeriesDescription"),
        BodyPartExamined=header_text(ds, "BodyPartExamined", 16),
        ProtocolName=header_text(ds, "ProtocolName"),
        ImageType=header_text(ds, "ImageType", 256),
        ContrastBolusAgent=header_text(ds, "ContrastBolusAgent"),
        SliceThickness=header_text(ds, "SliceThickness", 16),
        path=path,
        size_bytes=size_bytes,
        calling_ae_title=calling_ae_title,
    )


def _explicit_le(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    """One Explicit VR Little Endian element (PS3.5 7.1.2)."""
    tag = struct.pack("<HH", group, element)
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return tag + vr + b"\x00\x00" + struct.pack("<I", len(value)) + value
    return tag + vr + struct.pack("<H", len(value)) + value


def _padded(value: str, pad: bytes) -> bytes:
    raw = value.encode("ascii", "replace")  # a peer's AE title is not ours to trust
    return raw + pad if len(raw) % 2 else raw


def file_meta_header(
    SOPClassUID: str, SOPInstanceUID: str, transfer_syntax: str, calling_ae_title: str
) -> bytes:
    """Preamble, prefix and File Meta Information for an instance (PS3.10 7.1).

    Packed by hand: it is built once per received instance, and pydicom's general writer
    cost more than the rest of the header handling together.
    """
    body = b"".join(
        (
            _explicit_le(0x0002, 0x0001, b"OB", b"\x00\x01"),
            _explicit_le(0x0002, 0x0002, b"UI", _padded(SOPClassUID, b"\x00")),
            _explicit_le(0x0002, 0x0003, b"UI", _padded(SOPInstanceUID, b"\x00")),
            _explicit_le(0x0002, 0x0010, b"UI", _padded(transfer_syntax, b"\x00")),
            _explicit_le(0x0002, 0x0012, b"UI", _padded(IMPLEMENTATION_CLASS_UID, b"\x00")),
            _explicit_le(0x0002, 0x0013, b"SH", _padded(IMPLEMENTATION_VERSION_NAME, b" ")),
            _explicit_le(0x0002, 0x0016, b"AE", _padded(calling_ae_title, b" "))
            if calling_ae_title
            else b"",
        )
    )
    group_length = _explicit_le(0x0002, 0x0000, b"UL", struct.pack("<I", len(body)))
    return PREAMBLE + group_length + body


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
            rsp.ErrorComment = error_comment(outcome.comment)
        return rsp

    def _handle(self, event: Any, stream: memoryview) -> tuple[str | None, Outcome]:
        transfer_syntax = UID(event.context.transfer_syntax)
        ds = parse_dataset(stream, transfer_syntax)
        modality = header_text(ds, "Modality", 16)
        SOPInstanceUID = header_text(ds, "SOPInstanceUID", UID_READ)
        rel = self.spool.relative_path(
            header_text(ds, "StudyInstanceUID", UID_READ),
            header_text(ds, "SeriesInstanceUID", UID_READ),
            SOPInstanceUID,
        )
        SOPClassUID = header_text(ds, "SOPClassUID")
        if not SOPClassUID:
            raise DatasetError("SOPClassUID is missing")
        if SOPInstanceUID is None:  # relative_path has refused this already
            raise InvalidUIDError("SOPInstanceUID is missing")
        if self.min_free_bytes and self.spool.free_bytes() < self.min_free_bytes:
            raise SpoolError("free disk space is below the configured minimum")

        existing = self.store.get_instance(SOPInstanceUID)
        difference = ""
        if existing is not None:
            if self.spool.same_data_set(existing.path, stream):
                log.debug("duplicate of stored instance %s; nothing to do", SOPInstanceUID)
                return modality, Outcome(Status.SUCCESS, "duplicate")
            # Other bytes: the same content in another encoding is still a duplicate.
            comparison = compare_with_stored(
                self.spool.absolute(existing.path), stream, transfer_syntax
            )
            if comparison.same:
                log.info(
                    "duplicate of stored instance %s: the same content in transfer syntax %s "
                    "(stored in %s); the stored file is kept",
                    SOPInstanceUID,
                    transfer_syntax,
                    comparison.stored_transfer_syntax,
                )
                return modality, Outcome(Status.SUCCESS, "duplicate")
            difference = comparison.reason

        calling = str(event.assoc.requestor.ae_title).strip()
        header = file_meta_header(SOPClassUID, SOPInstanceUID, str(transfer_syntax), calling)
        self.spool.write(rel, (header, stream))
        record = instance_record(
            ds, transfer_syntax, rel, len(header) + len(stream), calling or None
        )
        reopened = self.store.record_instance(record)
        if reopened:
            log.info("late instance re-opened series %s", record.SeriesInstanceUID)
        if existing is None:
            return modality, Outcome(Status.SUCCESS, "stored")
        if existing.path != rel:
            self.spool.remove(existing.path)
        log.warning(
            "instance %s received again with different content (%s); the newer replaced the older",
            SOPInstanceUID,
            difference,
        )
        return modality, Outcome(Status.SUCCESS, "replaced")
