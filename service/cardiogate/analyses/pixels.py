"""Checks a loader makes before it trusts a header or hands pixel data to a decoder.

A received instance is only as sound as its sender: a header value that does not convert,
Rows x Columns x Number of Frames far beyond the bytes present, or compressed data that
makes a decoder fail (pylibjpeg's Rust decoders panic, which Python sees as a
``BaseException``, not an ``Exception``). Each of these becomes the loader's own
:class:`~cardiogate.errors.CardiogateError`, with a reason, before memory is allocated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import parse_fragments
from pydicom.uid import UID

from cardiogate.errors import CardiogateError

MAX_SIDE = 8192  # rows or columns of one image; CT is 512-1024, XA detectors up to 2048
MAX_VOXELS = 2**30  # voxels of one series (4 GiB as float32)
BITS_ALLOCATED = (8, 16, 32)


def read_file(source: Path | Dataset, index: int, error: type[CardiogateError]) -> Dataset:
    """Parse a file (a dataset passes through); any parser failure becomes ``error``."""
    if isinstance(source, Dataset):
        return source
    try:
        return pydicom.dcmread(source)
    except Exception as e:  # pydicom raises many types for a malformed file
        # the path may name the patient: only the index goes into the message
        raise error(f"source {index} cannot be read as DICOM ({type(e).__name__})") from e


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
        raise error(f"instance {uid} has a malformed header value ({type(e).__name__})") from e


def header_int(ds: Dataset, keyword: str, uid: str, error: type[CardiogateError]) -> int:
    """A required integer attribute, or ``error`` naming it."""
    value = ds.get(keyword)
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise error(f"instance {uid} lacks a usable {keyword}") from e


def check_image(
    ds: Dataset, frames: int, uid: str, error: type[CardiogateError]
) -> tuple[int, int]:
    """Rows and Columns of an instance whose pixel data can hold ``frames`` frames.

    Raises ``error`` for sizes out of range, a bit depth the loaders do not read, native
    pixel data shorter than the header says, or fewer encapsulated fragments than frames.
    """
    rows = header_int(ds, "Rows", uid, error)
    columns = header_int(ds, "Columns", uid, error)
    bits = header_int(ds, "BitsAllocated", uid, error)
    if not (0 < rows <= MAX_SIDE and 0 < columns <= MAX_SIDE):
        raise error(f"instance {uid} has an unusable matrix size {rows} x {columns}")
    if bits not in BITS_ALLOCATED:
        raise error(f"instance {uid} has BitsAllocated {bits}, not one of {BITS_ALLOCATED}")
    stored = ds.get("BitsStored")
    if stored is not None and not 0 < header_int(ds, "BitsStored", uid, error) <= bits:
        raise error(f"instance {uid} has BitsStored outside 1..BitsAllocated")
    if frames < 1 or frames * rows * columns > MAX_VOXELS:
        raise error(f"instance {uid} declares {frames} frames of {rows} x {columns}")
    pixels = ds.get("PixelData")
    if pixels is None:
        raise error(f"instance {uid} has no PixelData")
    meta = getattr(ds, "file_meta", None)
    syntax = UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")
    if not syntax.is_transfer_syntax:
        raise error(f"instance {uid} has no known transfer syntax")
    if syntax.is_encapsulated:
        try:
            fragments, _ = parse_fragments(pixels)
        except (ValueError, TypeError, EOFError) as e:
            raise error(
                f"pixel data of instance {uid} cannot be decoded (malformed fragments)"
            ) from e
        if fragments < frames:
            raise error(
                f"pixel data of instance {uid} cannot be decoded ({fragments} fragments "
                f"for {frames} frames)"
            )
    elif len(pixels) < frames * rows * columns * (bits // 8):
        raise error(f"instance {uid} has less pixel data than its header declares")
    return rows, columns


@contextlib.contextmanager
def decoding(ds: Dataset, uid: str, error: type[CardiogateError]) -> Iterator[None]:
    """Turn any decoder failure into ``error`` (Rust panics included; interrupts pass)."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit, GeneratorExit, CardiogateError):
        raise
    except BaseException as e:  # pydicom's and pylibjpeg's many failures
        meta = getattr(ds, "file_meta", None)
        syntax = meta.get("TransferSyntaxUID", "unknown") if meta is not None else "unknown"
        raise error(
            f"pixel data of instance {uid} cannot be decoded ({type(e).__name__}, "
            f"transfer syntax {syntax})"
        ) from e
