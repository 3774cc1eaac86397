"""Checks a loader makes before it trusts a header or hands pixel data to a decoder.

A received instance is only as sound as its sender: a header value that does not convert,
Rows x Columns x Number of Frames far beyond the bytes present, a transfer syntax that no
decoder here reads, or compressed data that makes a decoder fail (pylibjpeg's Rust decoders
panic, which Python sees as a ``BaseException``, not an ``Exception``). Each of these
becomes the loader's own :class:`~cardiogate.errors.CardiogateError`, with a reason, before
memory is allocated.

Encapsulated pixel data (PS3.5 A.4) is decoded by pydicom's decoders, which trust the
Extended or Basic Offset Table. Senders get these wrong (offsets that skip the item headers,
one offset for many frames), so :func:`framed` finds the frame boundaries itself and, only
where pydicom would group the fragments differently, hands it one fragment per frame.
"""

from __future__ import annotations

import contextlib
import itertools
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    UID,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
    RLELossless,
)

from cardiogate.errors import CardiogateError

MAX_SIDE = 8192  # rows or columns of one image; CT is 512-1024, XA detectors up to 2048
MAX_VOXELS = 2**30  # voxels of one series (4 GiB as float32)
BITS_ALLOCATED = (8, 16, 32)

_ITEM, _SEQUENCE_DELIMITER = 0xFFFEE000, 0xFFFEE0DD
_EXTENDED_OFFSET_TABLE, _EXTENDED_OFFSET_LENGTHS = 0x7FE00001, 0x7FE00002
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"  # ISO 15444-1 I.5.1


@dataclass(frozen=True)
class Defect:
    """What is wrong with one attribute of one instance, e.g. ``PixelSpacing`` ``absent``."""

    keyword: str
    what: str

    def __str__(self) -> str:
        return f"{self.keyword} {self.what}"


class Defects:
    """Defects of a series' instances, reported per attribute with their count.

    ``"PixelSpacing absent in 3 of 64 slices (first: instance 1.2.3)"`` tells an operator
    more than the first instance's failure alone.
    """

    def __init__(self, total: int, unit: str = "slices") -> None:
        self.total, self.unit = total, unit
        self._found: dict[Defect, list[str]] = {}

    def add(self, uid: str, defect: Defect | None) -> None:
        """Record ``defect`` of instance ``uid``; None records nothing."""
        if defect is not None:
            self._found.setdefault(defect, []).append(uid)

    def check(self, error: type[CardiogateError]) -> None:
        """Raise ``error`` naming every defect found, with its count; nothing if none."""
        if self._found:
            raise error(
                "; ".join(
                    f"{defect} in {len(uids)} of {self.total} {self.unit} "
                    f"(first: instance {uids[0]})"
                    for defect, uids in self._found.items()
                )
            )


def read_file(source: Path | Dataset, index: int, error: type[CardiogateError]) -> Dataset:
    """Parse a file (a dataset passes through); any parser failure becomes ``error``."""
    if isinstance(source, Dataset):
        return source
    try:
        return pydicom.dcmread(source)
    except Exception as e:  # pydicom raises many types for a malformed file
        # the path may name the patient: only the index goes into the message
        raise error(f"source {index} cannot be read as DICOM") from e


def convert_header(ds: Dataset, uid: str, error: type[CardiogateError]) -> None:
    """Convert every element's value now, so a malformed one fails here, by tag.

    pydicom converts raw values on first access; an IS of "inf", a DS of "abc" or a VR it
    does not know would otherwise raise deep inside a loader.
    """
    try:
        for _ in ds.iterall():
            pass
    except Exception as e:  # pydicom raises many types (ValueError, zlib.error, ...)
        # the message would quote the value, which may be a patient's: not passed on
        raise error(f"instance {uid} has a malformed header value") from e


def header_int(ds: Dataset, keyword: str, uid: str, error: type[CardiogateError]) -> int:
    """A required integer attribute, or ``error`` naming it."""
    value = ds.get(keyword)
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise error(f"instance {uid} lacks a usable {keyword}") from e


def transfer_syntax(ds: Dataset) -> UID:
    """The instance's Transfer Syntax UID; empty when it has no file meta."""
    meta = getattr(ds, "file_meta", None)
    return UID(str(meta.get("TransferSyntaxUID", ""))[:64]) if meta is not None else UID("")


def image_defect(ds: Dataset, frames: int) -> tuple[int, int] | Defect:
    """Rows and Columns of an instance whose pixel data can hold ``frames`` frames, or
    what is wrong: sizes out of range, a bit depth the loaders do not read, a transfer
    syntax no decoder here reads, native pixel data shorter than the header says, or
    encapsulated pixel data that is not a sequence of fragments, fewer than the frames."""
    sizes: dict[str, int] = {}
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        try:
            sizes[keyword] = int(ds.get(keyword))
        except (TypeError, ValueError, OverflowError):
            return Defect(keyword, "absent or unusable")
    rows, columns, bits = sizes["Rows"], sizes["Columns"], sizes["BitsAllocated"]
    if not (0 < rows <= MAX_SIDE and 0 < columns <= MAX_SIDE):
        return Defect("Rows/Columns", f"{rows} x {columns} out of range")
    if bits not in BITS_ALLOCATED:
        return Defect("BitsAllocated", f"{bits}, not one of {BITS_ALLOCATED}")
    try:
        stored = int(ds.get("BitsStored", bits))
    except (TypeError, ValueError, OverflowError):
        return Defect("BitsStored", "unusable")
    if not 0 < stored <= bits:
        return Defect("BitsStored", "outside 1..BitsAllocated")
    if frames < 1 or frames * rows * columns > MAX_VOXELS:
        return Defect("NumberOfFrames", f"{frames} frames of {rows} x {columns}")
    pixels = ds.get("PixelData")
    if pixels is None:
        return Defect("PixelData", "absent")
    syntax = transfer_syntax(ds)
    if not syntax.is_transfer_syntax:
        return Defect("TransferSyntaxUID", f"{syntax or 'absent'}, not a known transfer syntax")
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        return Defect("TransferSyntaxUID", f"{syntax.name} ({syntax}): no decoder here")
    if syntax.is_encapsulated:
        fragments = _fragments(pixels, frames)
        if isinstance(fragments, Defect):
            return fragments
    elif len(pixels) < frames * rows * columns * (bits // 8):
        return Defect("PixelData", "shorter than its header declares")
    return rows, columns


def check_image(
    ds: Dataset, frames: int, uid: str, error: type[CardiogateError]
) -> tuple[int, int]:
    """Rows and Columns of an instance whose pixel data can hold ``frames`` frames, or
    ``error`` naming the instance and what :func:`image_defect` found."""
    found = image_defect(ds, frames)
    if isinstance(found, Defect):
        raise error(f"instance {uid}: {found}")
    return found


@contextlib.contextmanager
def decoding(ds: Dataset, uid: str, error: type[CardiogateError]) -> Iterator[None]:
    """Turn any decoder failure into ``error`` (Rust panics included; interrupts pass)."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit, GeneratorExit, CardiogateError):
        raise
    except BaseException as e:  # pydicom's and pylibjpeg's many failures
        syntax = transfer_syntax(ds)
        raise error(
            f"pixel data of instance {uid} cannot be decoded as {syntax.name or 'unknown'} "
            f"({syntax or 'no transfer syntax'})"
        ) from e


@dataclass(frozen=True)
class _Fragments:
    """The items of encapsulated pixel data (PS3.5 A.4): Basic Offset Table and fragments."""

    basic_offsets: list[int]
    positions: list[int]  # of each fragment's item, from the first fragment's item
    values: list[memoryview]

    @classmethod
    def parse(cls, data: bytes) -> _Fragments:
        """Split ``data`` into its items without copying; ValueError when malformed."""
        view, at, items = memoryview(data), 0, []
        while at + 8 <= len(view):
            group, element, length = struct.unpack_from("<HHL", view, at)
            if (group << 16 | element) == _SEQUENCE_DELIMITER:
                break
            if (group << 16 | element) != _ITEM or at + 8 + length > len(view):
                raise ValueError("not an item, or an item longer than the data")
            items.append((at, view[at + 8 : at + 8 + length]))
            at += 8 + length
        if len(items) < 2 or len(items[0][1]) % 4:
            raise ValueError("no Basic Offset Table item, or no fragment")
        table = items[0][1]
        first = items[1][0]
        return cls(
            basic_offsets=list(struct.unpack_from(f"<{len(table) // 4}L", table)),
            positions=[position - first for position, _ in items[1:]],
            values=[value for _, value in items[1:]],
        )

    def starts_at(self, offsets: list[int], frames: int) -> list[int] | None:
        """Index of each frame's first fragment when ``offsets`` land exactly on fragment
        items, strictly increasing from the first, one per frame; else None."""
        index = {position: i for i, position in enumerate(self.positions)}
        starts = [index.get(offset, -1) for offset in offsets]
        if len(starts) != frames or not starts or starts[0] != 0:
            return None
        return starts if all(a < b for a, b in itertools.pairwise(starts)) else None

    def starts_after_ends(self, ends: list[int]) -> list[int]:
        """Frame starts when the frames end with fragments ``ends`` (and the last one)."""
        return [0, *(i + 1 for i in ends if i + 1 < len(self.values))]


def _fragments(pixels: bytes, frames: int) -> _Fragments | Defect:
    """The items of encapsulated pixel data, at least one fragment per frame."""
    try:
        fragments = _Fragments.parse(pixels)
    except (ValueError, TypeError):
        return Defect("PixelData", "cannot be decoded (malformed fragments)")
    if len(fragments.values) < frames:
        count = len(fragments.values)
        return Defect("PixelData", f"cannot be decoded ({count} fragments for {frames} frames)")
    return fragments


def _codestream_start(syntax: UID) -> Callable[[memoryview], bool] | None:
    """Whether a fragment begins a frame's codestream: JPEG and JPEG-LS start of image
    (FFD8), JPEG 2000 and HTJ2K start of codestream and SIZ (FF4F FF51) or a JP2 file,
    RLE a header of 1 to 15 segments whose first starts at byte 64 (PS3.5 G.5)."""
    if syntax in JPEGTransferSyntaxes or syntax in JPEGLSTransferSyntaxes:
        return lambda value: bytes(value[:2]) == b"\xff\xd8"
    if syntax in JPEG2000TransferSyntaxes:
        return lambda value: (
            bytes(value[:4]) == b"\xff\x4f\xff\x51" or bytes(value[:12]) == _JP2_SIGNATURE
        )
    if syntax == RLELossless:
        return lambda value: (
            len(value) >= 64
            and (
                1 <= struct.unpack_from("<L", value)[0] <= 15
                and struct.unpack_from("<L", value, 4)[0] == 64
            )
        )
    return None


def _codestream_end(value: memoryview) -> bool:
    """Whether a fragment ends a JPEG or JPEG 2000 codestream (FFD9, maybe one pad byte)."""
    tail = bytes(value[-3:])
    return tail.endswith(b"\xff\xd9") or tail == b"\xff\xd9\x00"


def _extended_table(ds: Dataset, tag: int) -> list[int] | None:
    """Extended Offset Table or its Lengths (PS3.3 C.7.6.3.1.8); None when absent or not
    a whole number of 64-bit values."""
    element = ds.get(tag)
    value = element.value if element is not None else None
    if not isinstance(value, bytes) or len(value) % 8:
        return None
    return list(struct.unpack(f"<{len(value) // 8}Q", value))


def _extended_starts(ds: Dataset, fragments: _Fragments, frames: int) -> list[int] | None:
    offsets = _extended_table(ds, _EXTENDED_OFFSET_TABLE)
    return None if offsets is None else fragments.starts_at(offsets, frames)


def _lengths_fit(ds: Dataset, fragments: _Fragments) -> bool:
    """Whether Extended Offset Table Lengths give each frame's single fragment."""
    lengths = _extended_table(ds, _EXTENDED_OFFSET_LENGTHS)
    if lengths is None or len(lengths) != len(fragments.values):
        return False
    return all(len(v) - 1 <= n <= len(v) for n, v in zip(lengths, fragments.values, strict=True))


def _frame_starts(ds: Dataset, fragments: _Fragments, frames: int, syntax: UID) -> list[int] | str:
    """Index of each frame's first fragment, or why none is found.

    The first grouping that gives ``frames`` frames and agrees with the codestream start
    markers wins: the Extended Offset Table, the Basic Offset Table, one fragment per
    frame, all fragments for one frame, the start markers, the JPEG end markers. Where the
    markers are not recognised, the first grouping that gives ``frames`` frames.
    """
    values = fragments.values
    start = _codestream_start(syntax)
    marked = [i for i, value in enumerate(values) if start(value)] if start else []
    ended = [i for i, value in enumerate(values) if _codestream_end(value)]
    if syntax == RLELossless or not ended or ended[-1] != len(values) - 1:
        ended = []  # RLE has no end marker; the last fragment must end a codestream
    candidates = [
        _extended_starts(ds, fragments, frames),
        fragments.starts_at(fragments.basic_offsets, frames),
        list(range(frames)) if len(values) == frames else None,
        [0] if frames == 1 else None,
        fragments.starts_at([fragments.positions[i] for i in marked], frames),
        fragments.starts_at(
            [fragments.positions[i] for i in fragments.starts_after_ends(ended)], frames
        )
        if start is not None and ended
        else None,
    ]
    usable = [c for c in candidates if c is not None]
    for starts in usable:
        if start is None or all(start(values[i]) for i in starts):
            return starts
    if usable:
        return usable[0]
    if marked and marked[0] == 0:
        return f"decodes to {len(marked)} frames, NumberOfFrames says {frames}"
    return f"has no frame boundaries for {frames} frames in {len(values)} fragments"


def _pydicom_starts(ds: Dataset, fragments: _Fragments, frames: int) -> list[int] | None:
    """Frame starts as pydicom's ``generate_fragmented_frames`` would find them, where it
    would find ``frames`` frames of whole fragments; else None."""
    if _EXTENDED_OFFSET_TABLE in ds:
        starts = _extended_starts(ds, fragments, frames)
        if starts == list(range(len(fragments.values))) and _lengths_fit(ds, fragments):
            return starts
        return None
    if fragments.basic_offsets:
        return fragments.starts_at(fragments.basic_offsets, frames)
    if len(fragments.values) == frames:
        return list(range(frames))
    if frames == 1:
        return [0]
    eoi = [i for i, value in enumerate(fragments.values) if b"\xff\xd9" in bytes(value[-10:])]
    return fragments.starts_after_ends(eoi)


def framed(ds: Dataset, frames: int, uid: str, error: type[CardiogateError]) -> Dataset:
    """``ds`` itself when pydicom finds its ``frames`` frames; else a dataset with its
    Image Pixel module and one fragment per frame, for pydicom's decoders.

    Raises ``error`` when the fragments do not make ``frames`` frames, naming the counts.
    """
    syntax = transfer_syntax(ds)
    if not syntax.is_encapsulated:
        return ds
    fragments = _fragments(ds.PixelData, frames)
    if isinstance(fragments, Defect):
        raise error(f"instance {uid}: {fragments}")
    starts = _frame_starts(ds, fragments, frames, syntax)
    if isinstance(starts, str):
        raise error(f"instance {uid} {starts}")
    if starts == _pydicom_starts(ds, fragments, frames):
        return ds
    bounds = [*starts, len(fragments.values)]
    out = ds.group_dataset(0x0028)  # the Image Pixel module a decoder reads (PS3.3 C.7.6.3)
    out.file_meta = ds.file_meta
    out.add_new(
        0x7FE00010,
        "OB",
        encapsulate(
            [b"".join(fragments.values[a:b]) for a, b in itertools.pairwise(bounds)],
            has_bot=False,
        ),
    )
    return out
