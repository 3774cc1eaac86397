"""Same SOP instance, same content: compared after decoding, whatever the transfer syntax.

A transfer syntax fixes how a data set is encoded (VR explicit or not, byte order,
deflation, pixel compression), not what it says (PS3.5 7, 8, 10). A PACS may send an
instance we hold again in another transfer syntax; that is a duplicate, not a correction.
Two encodings hold the same content when

- every public data element has the same decoded value, sequences item by item, except
  those in :data:`NOT_COMPARED` (encoding-only ones, and one that DCMTK's codecs rewrite)
  and group lengths (gggg,0000, whose values depend on the encoding), and
- the pixel data decode to the same frames, sample for sample, with the same photometric
  interpretation once decoded.

Private elements are not compared: their VR is unknown in Implicit VR, so their values
are not comparable across encodings. Anything that cannot be decoded or compared counts
as different content: the caller then keeps its replace-and-version behaviour. This runs
only when the received bytes differ from the stored ones, never for a new instance.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from io import BytesIO
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    JPEGLSLossless,
    JPEGLSNearLossless,
)

PIXEL_TAGS = frozenset((0x7FE00008, 0x7FE00009, 0x7FE00010))  # Float, DoubleFloat, PixelData
PHOTOMETRIC_INTERPRETATION = 0x00280004

NOT_COMPARED = frozenset(
    (
        0x00080005,  # SpecificCharacterSet: text is compared decoded
        0x00280006,  # PlanarConfiguration: decoded frames are always colour-by-pixel
        0x7FE00001,  # ExtendedOffsetTable: where compressed frames start (PS3.5 A.4)
        0x7FE00002,  # ExtendedOffsetTableLengths
        0x7FE00003,  # EncapsulatedPixelDataValueTotalLength: the compressed size
        *PIXEL_TAGS,  # compared as decoded frames
        0xFFFCFFFC,  # DataSetTrailingPadding (PS3.10 7.2)
        # DerivationDescription: DCMTK's codecs append a note of the compression they
        # applied, lossless too. Changed pixels are found decoded, and a lossy encoding
        # also sets LossyImageCompression (0028,2110), which is compared.
        0x00082111,
    )
)

_IN_ITEMS = frozenset((0x00080005,))  # SpecificCharacterSet may be set for an item too

# Bytes of one word of each VR whose bytes follow the transfer syntax's byte order
# (PS3.5 7.3); pydicom keeps them as read, so a big endian value is swapped to compare.
_WORD_BYTES = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}

# CharLS decodes JPEG-LS ~5 times faster than libjpeg; both decode exactly (ISO 14495-1).
_PLUGINS = {JPEGLSLossless: "pyjpegls", JPEGLSNearLossless: "pyjpegls"}

# A frame that decodes to more than this is not compared (a header declaring a huge
# matrix over a few bytes of compressed zeros would otherwise fill memory): 8192 x 8192
# samples of 32 bits, the loaders' largest matrix.
MAX_FRAME_BYTES = 2**28


@dataclass(frozen=True, slots=True)
class Comparison:
    """Whether two encodings hold the same content; ``reason`` names the first difference
    by attribute keyword or frame number (never a value)."""

    same: bool
    reason: str
    stored_transfer_syntax: str = ""


def received_data_set(stream: bytes | memoryview, transfer_syntax: UID) -> Dataset:
    """A received data set, its transfer syntax in ``file_meta``; values convert on access."""
    data = bytes(stream)
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        data = zlib.decompress(data, -zlib.MAX_WBITS)
    ds = read_dataset(
        BytesIO(data), transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian
    )
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    return ds


def compare_with_stored(
    stored: Path, stream: bytes | memoryview, transfer_syntax: UID
) -> Comparison:
    """Compare a stored Part 10 file with a received data set in ``transfer_syntax``.

    Never raises (interrupts aside): a file or data set that cannot be read or decoded
    makes the content different, with the exception's class named in the reason.
    """
    try:
        old = pydicom.dcmread(stored)
        new = received_data_set(stream, transfer_syntax)
        return replace(
            compare(old, new), stored_transfer_syntax=str(old.file_meta.TransferSyntaxUID)
        )
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as e:  # pydicom's many errors; pylibjpeg's Rust panics
        return Comparison(False, f"not comparable ({type(e).__name__})")


def compare(old: Dataset, new: Dataset) -> Comparison:
    """Compare two data sets that carry their transfer syntax in ``file_meta``."""
    old_syntax = UID(old.file_meta.TransferSyntaxUID)
    new_syntax = UID(new.file_meta.TransferSyntaxUID)
    has_pixels = [any(t in ds for t in PIXEL_TAGS) for ds in (old, new)]
    if has_pixels[0] != has_pixels[1]:
        return Comparison(False, "pixel data present in only one")
    # With pixels, the photometric interpretation is compared as decoded (a JPEG 2000
    # encoding stores RGB as YBR_RCT or YBR_ICT; PS3.5 8.2.4); without, as a value.
    skip = NOT_COMPARED | ({PHOTOMETRIC_INTERPRETATION} if has_pixels[0] else set())
    differs = _first_difference(
        old, new, old_syntax.is_little_endian, new_syntax.is_little_endian, skip
    )
    if differs is not None:
        return Comparison(False, f"attribute {differs} differs")
    if has_pixels[0]:
        return _compare_frames(old, old_syntax, new, new_syntax)
    return Comparison(True, "same attributes, no pixel data")


def _compared_tags(ds: Dataset, skip: frozenset[int] | set[int]) -> set[BaseTag]:
    return {
        t
        for t in ds._dict  # tags only: nothing is converted here
        if not t.is_private and t.group != 0x0002 and t.element != 0x0000 and t not in skip
    }


def _name(tag: BaseTag) -> str:
    return keyword_for_tag(tag) or f"({tag.group:04X},{tag.element:04X})"


def _first_difference(
    old: Dataset,
    new: Dataset,
    old_little: bool,
    new_little: bool,
    skip: frozenset[int] | set[int],
) -> str | None:
    """The keyword of the first public element whose decoded value differs, or None."""
    tags = _compared_tags(old, skip)
    if tags != _compared_tags(new, skip):
        return _name(min(tags ^ _compared_tags(new, skip)))
    for tag in sorted(tags):
        a, b = old[tag], new[tag]
        if a.VR == "SQ" or b.VR == "SQ":
            if a.VR != b.VR or len(a.value) != len(b.value):
                return _name(tag)
            for item_a, item_b in zip(a.value, b.value, strict=True):
                # pixel data nested in an item (an icon image) is compared as its bytes
                inner = _first_difference(item_a, item_b, old_little, new_little, _IN_ITEMS)
                if inner is not None:
                    return f"{_name(tag)} > {inner}"
        elif _value(a, old_little) != _value(b, new_little):
            return _name(tag)
    return None


def _value(elem: DataElement, little_endian: bool) -> Any:
    """An element's value as compared: words of OW/OF/OL/OD/OV little endian."""
    value = elem.value
    size = _WORD_BYTES.get(elem.VR)
    if size is None or little_endian or not isinstance(value, bytes) or len(value) % size:
        return value
    return np.frombuffer(value, f">u{size}").astype(f"<u{size}").tobytes()


def _frame_bytes(ds: Dataset) -> int:
    samples = int(ds.get("SamplesPerPixel", 1))
    bits = 64 if "DoubleFloatPixelData" in ds else int(ds.get("BitsAllocated", 0))
    return int(ds.get("Rows", 0)) * int(ds.get("Columns", 0)) * samples * (-(-bits // 8))


def _frames(ds: Dataset, syntax: UID) -> Iterator[tuple[np.ndarray, dict[str, str | int]]]:
    decoder = get_decoder(syntax)
    plugin = _PLUGINS.get(syntax, "")
    if plugin not in decoder.available_plugins:
        plugin = ""
    return decoder.iter_array(ds, decoding_plugin=plugin)


def _compare_frames(old: Dataset, old_syntax: UID, new: Dataset, new_syntax: UID) -> Comparison:
    """Decode both frame by frame (one frame of each held at a time) and compare."""
    if _frame_bytes(old) > MAX_FRAME_BYTES:  # Rows, Columns, ... are the same in both
        return Comparison(False, "not comparable (frames too large to decode)")
    frames = zip_longest(_frames(old, old_syntax), _frames(new, new_syntax))
    for index, (a, b) in enumerate(frames):
        if a is None or b is None:
            return Comparison(False, "number of frames differs")
        (array_a, meta_a), (array_b, meta_b) = a, b
        if meta_a.get("photometric_interpretation") != meta_b.get("photometric_interpretation"):
            return Comparison(False, "decoded PhotometricInterpretation differs")
        if not np.array_equal(array_a, array_b):
            return Comparison(False, f"decoded pixels of frame {index + 1} differ")
    return Comparison(True, "same attributes and decoded pixels")
