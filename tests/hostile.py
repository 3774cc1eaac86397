"""Hostile input for the fuzz and property tests: small valid synthetic instances, ways to
spoil them (byte flips, cuts, lying lengths, absurd element values), and the checks that
must hold whatever arrives. Shared by the hypothesis tests and the atheris harnesses."""

from __future__ import annotations

import contextlib
import copy
import logging
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path

import pydicom.config
from cardiogate_phantoms import make_ct_series, make_xa_cine
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from cardiogate.dicom.ingest import StoreSCPHandler, file_meta_header
from cardiogate.dicom.spool import Spool
from cardiogate.dicom.status import Status
from cardiogate.metrics import PrometheusIngestSink
from cardiogate.store import Store

SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
)
# What a C-STORE of hostile input may answer: stored, or refused as not understood. Never
# out-of-resources (a PACS would retry the same bad instance for ever) or another status.
ALLOWED_STATUSES = frozenset({Status.SUCCESS, Status.CANNOT_UNDERSTAND})

HOSTILE_UIDS = (
    "../../etc",
    "1.2/../../x",
    "..",
    "/etc/passwd",
    "1.2.3\\4.5",  # two values
    "1." * 40 + "1",  # 81 characters
    "9" * 65,
    "1.2.3\x00/x",
    "1..2",
    ".1.2",
    "1.2.",
    "\u0661.\u0662",  # Arabic-Indic digits: digits to str.isdigit, not to the spool
    "",
    " ",
)
HOSTILE_NUMBERS = (
    "0",
    "-1",
    "-0",
    "1e308",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "2147483648",
    "99999999999999999999",
    "65535",
    "4294967296",
    "abc",
    "1\\2",
    "",
    "0.0",
    "-1e-300",
)
# (keyword, VR) of the elements the ingest record and the loaders read; values from above.
HOSTILE_ELEMENTS = (
    ("Rows", "US"),
    ("Columns", "US"),
    ("BitsAllocated", "US"),
    ("BitsStored", "US"),
    ("HighBit", "US"),
    ("PixelRepresentation", "US"),
    ("SamplesPerPixel", "US"),
    ("NumberOfFrames", "IS"),
    ("InstanceNumber", "IS"),
    ("SeriesNumber", "IS"),
    ("PixelSpacing", "DS"),
    ("ImagerPixelSpacing", "DS"),
    ("SliceThickness", "DS"),
    ("ImagePositionPatient", "DS"),
    ("ImageOrientationPatient", "DS"),
    ("RescaleSlope", "DS"),
    ("RescaleIntercept", "DS"),
    ("FrameTime", "DS"),
    ("FrameTimeVector", "DS"),
    ("CineRate", "IS"),
    ("WindowCenter", "DS"),
    ("WindowWidth", "DS"),
    ("DistanceSourceToDetector", "DS"),
    ("DistanceSourceToPatient", "DS"),
    ("PositionerPrimaryAngle", "DS"),
    ("PhotometricInterpretation", "CS"),
    ("SOPClassUID", "UI"),
    ("AcquisitionTime", "TM"),
    ("FrameIncrementPointer", "AT"),
)
US_VALUES = (0, 1, 3, 7, 8, 12, 16, 17, 32, 64, 65535)


@cache
def _ct_slices() -> tuple[Dataset, ...]:
    return tuple(make_ct_series(5, n_slices=3, rows=16, columns=16).datasets)


@cache
def _xa_cine() -> Dataset:
    return make_xa_cine(6, frames=4, rows=16, columns=16).datasets[0]


def ct_slices() -> list[Dataset]:
    """Three contiguous 16 x 16 CT slices (a valid volume), fresh copies to spoil."""
    return [copy.deepcopy(ds) for ds in _ct_slices()]


def xa_cine() -> Dataset:
    """A 4-frame 16 x 16 XA cine, a fresh copy to spoil."""
    return copy.deepcopy(_xa_cine())


def seeds() -> list[Dataset]:
    """Fresh copies of the valid instances the mutations start from."""
    return [*ct_slices(), xa_cine()]


@contextlib.contextmanager
def lax_writing() -> Iterator[None]:
    """Let pydicom encode values a hostile peer would send (it validates by default)."""
    mode = pydicom.config.settings.writing_validation_mode
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
    try:
        yield
    finally:
        pydicom.config.settings.writing_validation_mode = mode


Value = tuple[str, str, str | int]  # (keyword, VR, value) as a hostile peer sends it


def _element(tag: int, vr: str, value: bytes, syntax: UID) -> bytes:
    """One element with a short-length VR, encoded by hand (PS3.5 7.1.2, 7.1.3)."""
    order = "<" if syntax.is_little_endian else ">"
    head = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF)
    if syntax.is_implicit_VR:
        return head + struct.pack(order + "I", len(value)) + value
    return head + vr.encode() + struct.pack(order + "H", len(value)) + value


def _text(value: str | int, vr: str) -> bytes:
    raw = str(value).encode("utf-8", "surrogateescape")
    return raw + (b"\x00" if vr == "UI" else b" ") if len(raw) % 2 else raw


def encode(ds: Dataset, syntax: UID, hostile: Sequence[Value] = ()) -> bytes:
    """The data set as a peer sends it in a P-DATA stream (no file meta), with ``hostile``
    values spliced in as raw bytes (pydicom would refuse or convert them when writing)."""
    ds = copy.deepcopy(ds)
    splices: list[tuple[bytes, bytes]] = []
    last = {keyword: (vr, value) for keyword, vr, value in hostile}  # a repeat replaces
    for i, (keyword, (vr, value)) in enumerate(last.items()):
        tag = tag_for_keyword(keyword)
        assert tag is not None
        if vr in ("US", "AT"):  # binary and always in range: pydicom encodes these
            number = int(value) if isinstance(value, int) else 0
            ds[tag] = DataElement(tag, vr, number & 0xFFFF if vr == "US" else number)
            continue
        sentinel = f"{90000 + i}.5"  # unique in the stream once encoded
        ds[tag] = DataElement(tag, "LO", sentinel)
        ds[tag].VR = vr
        placeholder = _element(tag, vr, _text(sentinel, vr), syntax)
        splices.append((placeholder, _element(tag, vr, _text(value, vr), syntax)))
    fp = DicomBytesIO()
    fp.is_little_endian = syntax.is_little_endian
    fp.is_implicit_VR = syntax.is_implicit_VR
    with lax_writing():
        write_dataset(fp, ds)
    data = bytes(fp.getvalue())
    for placeholder, element in splices:
        assert data.count(placeholder) == 1
        data = data.replace(placeholder, element)
    if syntax == DeflatedExplicitVRLittleEndian:
        packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = packer.compress(data) + packer.flush()
    return data


def part10(ds: Dataset, syntax: UID, hostile: Sequence[Value] = ()) -> bytes:
    """``ds`` as the spool stores it: our file meta header, then the data set as received."""
    header = file_meta_header(str(ds.SOPClassUID), str(ds.SOPInstanceUID), syntax, "FUZZER")
    return header + encode(ds, syntax, hostile)


def mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    """Apply ``(kind, position, value)`` edits: 0 flip a byte, 1 cut, 2 insert a byte,
    3 write a 32-bit length, 4 write a 16-bit length. Positions wrap around the data."""
    buf = bytearray(data)
    for kind, position, value in ops:
        if not buf:
            break
        at = position % len(buf)
        if kind == 0:
            buf[at] ^= value & 0xFF or 0x01
        elif kind == 1:
            del buf[at:]
        elif kind == 2:
            buf.insert(at, value & 0xFF)
        elif kind == 3:
            buf[at : at + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
        else:
            buf[at : at + 2] = (value & 0xFFFF).to_bytes(2, "little")
    return bytes(buf)


@dataclass
class _Requestor:
    ae_title: str = "FUZZER"


@dataclass
class _Assoc:
    requestor: _Requestor


@dataclass
class _Context:
    transfer_syntax: str


@dataclass
class _Request:
    DataSet: BytesIO


@dataclass
class _Event:
    """The parts of pynetdicom's EVT_C_STORE event the handler reads."""

    request: _Request
    context: _Context
    assoc: _Assoc


class UnexpectedError(logging.Handler):
    """Catches the guard's 'failed unexpectedly' record: an exception we did not name."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class IngestRig:
    """The real C-STORE handler over a real spool and a real SQLite file in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.spool = Spool(root / "spool")
        self.spool.prepare()
        self.store = Store(f"sqlite:///{root / 'cardiogate.db'}")
        self.store.create_schema()
        self.handler = StoreSCPHandler(self.spool, self.store, PrometheusIngestSink(), 1)
        self.unexpected = UnexpectedError()
        logging.getLogger("cardiogate.dicom.ingest").addHandler(self.unexpected)

    def close(self) -> None:
        logging.getLogger("cardiogate.dicom.ingest").removeHandler(self.unexpected)
        self.store.dispose()

    def c_store(self, data: bytes, syntax: UID) -> Status:
        event = _Event(_Request(BytesIO(data)), _Context(str(syntax)), _Assoc(_Requestor()))
        return Status(int(self.handler(event).Status))

    def check(self, data: bytes, status: Status) -> None:
        """What must hold after any C-STORE, whatever its bytes."""
        assert status in ALLOWED_STATUSES, f"status {status.name} for hostile input"
        assert not self.unexpected.records, self.unexpected.records[0].exc_info
        assert list(self.spool.tmp.iterdir()) == [], "a partial file stayed in spool/.tmp"
        outside = [
            p
            for p in self.root.rglob("*")
            if p.is_file() and not p.is_relative_to(self.spool.root)
            if not p.name.startswith("cardiogate.db")
        ]
        assert outside == [], f"files written outside the spool: {outside}"
        for relative in self.spool.files():
            assert (self.spool.root / relative).resolve().is_relative_to(self.spool.root)
        rows, files = self.store.known_paths(), set(self.spool.files())
        assert rows == files, f"rows without a file or files without a row: {rows ^ files}"


def rle_variant(ds: Dataset) -> Dataset:
    """``ds`` RLE-compressed, so the loaders' decoders see encapsulated data too."""
    out = copy.deepcopy(ds)
    out.compress(RLELossless, encoding_plugin="pydicom")
    return out
