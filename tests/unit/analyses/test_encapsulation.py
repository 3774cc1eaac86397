"""Encapsulated pixel data as foreign senders write it (PS3.5 A.4): several fragments per
frame, an empty, wrong or extended offset table. Frames come out whole and in order, or the
instance is refused with a reason that names it and the counts."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import make_ct_series
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate_extended, fragment_frame, generate_frames
from pydicom.uid import (
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from cardiogate.analyses.ct_volume import SeriesGeometryError, load_ct_series
from cardiogate.analyses.pixels import framed
from cardiogate.analyses.xa_cine import XACineError, load_xa_cine
from xa_datasets import multiframe_xa, roundtrip

ITEM = 0xFFFEE000
Table = Callable[[list[list[bytes]]], list[int]]  # fragments of each frame -> BOT offsets


def _pixels(n: int = 4) -> np.ndarray[Any, Any]:
    """Noisy frames, so that every codestream is a few hundred bytes at least."""
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (n, 32, 40), dtype=np.uint8)


def _item(data: bytes) -> bytes:
    return struct.pack("<HHL", ITEM >> 16, ITEM & 0xFFFF, len(data)) + data


def _encapsulate(fragments: list[list[bytes]], offsets: list[int]) -> bytes:
    """A Basic Offset Table item holding *offsets*, then every fragment as an item."""
    table = _item(struct.pack(f"<{len(offsets)}L", *offsets))
    return table + b"".join(_item(f) for frame in fragments for f in frame)


def _true_offsets(fragments: list[list[bytes]]) -> list[int]:
    starts, at = [], 0
    for frame in fragments:
        starts.append(at)
        at += sum(8 + len(f) for f in frame)
    return starts


def _without_item_headers(fragments: list[list[bytes]]) -> list[int]:
    """A common vendor slip: offsets that count the fragments' bytes but not their items."""
    starts, at = [], 0
    for frame in fragments:
        starts.append(at)
        at += sum(len(f) for f in frame)
    return starts


def _of_every_fragment(fragments: list[list[bytes]]) -> list[int]:
    offsets, at = [], 0
    for frame in fragments:
        for f in frame:
            offsets.append(at)
            at += 8 + len(f)
    return offsets


TABLES: dict[str, Table] = {
    "empty": lambda fragments: [],
    "true": _true_offsets,
    "without item headers": _without_item_headers,
    "first frame only": lambda fragments: [0],
    "one per fragment": _of_every_fragment,
    "reversed": lambda fragments: _true_offsets(fragments)[::-1],
}


def _codestreams(pixels: np.ndarray[Any, Any], syntax: str) -> list[bytes]:
    ds = multiframe_xa(pixels)
    ds.compress(syntax)
    return list(generate_frames(ds.PixelData, number_of_frames=len(pixels)))


def _dcmtk_codestreams(pixels: np.ndarray[Any, Any], tmp_path: Path) -> list[bytes]:
    """JPEG lossless SV1 codestreams from dcmtk, a foreign encoder."""
    multiframe_xa(pixels).save_as(tmp_path / "native.dcm", enforce_file_format=True)
    subprocess.run(
        ["dcmcjpeg", "+e1", tmp_path / "native.dcm", tmp_path / "jpeg.dcm"],
        check=True,
        capture_output=True,
    )
    ds = pydicom.dcmread(tmp_path / "jpeg.dcm")
    assert ds.file_meta.TransferSyntaxUID == JPEGLosslessSV1
    return list(generate_frames(ds.PixelData, number_of_frames=len(pixels)))


def _xa_with(pixels: np.ndarray[Any, Any], syntax: str, pixel_data: bytes) -> Dataset:
    ds = multiframe_xa(pixels)
    ds.compress(RLELossless)  # any encapsulated syntax; replaced just below
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = pixel_data
    return roundtrip(ds)


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("syntax", [JPEGLSLossless, JPEG2000Lossless, "dcmtk"])
def test_three_fragments_per_frame_decode_whatever_the_offset_table(
    syntax: str, table: str, tmp_path: Path
) -> None:
    pixels = _pixels()
    if syntax == "dcmtk":
        syntax, streams = JPEGLosslessSV1, _dcmtk_codestreams(pixels, tmp_path)
    else:
        streams = _codestreams(pixels, syntax)
    fragments = [list(fragment_frame(s, 3)) for s in streams]
    ds = _xa_with(pixels, syntax, _encapsulate(fragments, TABLES[table](fragments)))
    np.testing.assert_array_equal(load_xa_cine([ds]).frames, pixels)


@pytest.mark.parametrize("table", ["without item headers", "first frame only", "reversed"])
def test_rle_with_a_wrong_offset_table_decodes(table: str) -> None:
    pixels = _pixels()
    fragments = [[s] for s in _codestreams(pixels, RLELossless)]
    ds = _xa_with(pixels, RLELossless, _encapsulate(fragments, TABLES[table](fragments)))
    np.testing.assert_array_equal(load_xa_cine([ds]).frames, pixels)


def _with_extended_table(
    pixels: np.ndarray[Any, Any], spoil: Callable[[list[int]], list[int]]
) -> Dataset:
    streams = _codestreams(pixels, JPEGLSLossless)
    pixel_data, offsets, lengths = encapsulate_extended(streams)
    table = list(struct.unpack(f"<{len(streams)}Q", offsets))
    ds = _xa_with(pixels, JPEGLSLossless, pixel_data)
    spoiled = spoil(table)
    ds.ExtendedOffsetTable = struct.pack(f"<{len(spoiled)}Q", *spoiled)
    ds.ExtendedOffsetTableLengths = lengths
    return roundtrip(ds)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda t: t,
        lambda t: [o + 8 for o in t],  # offsets of the values, not of the items
        lambda t: t[:-1],  # one frame short
        lambda t: [0] * len(t),
    ],
    ids=["valid", "past the item headers", "one short", "all zero"],
)
def test_extended_offset_table_valid_or_not(spoil: Callable[[list[int]], list[int]]) -> None:
    pixels = _pixels()
    ds = _with_extended_table(pixels, spoil)
    np.testing.assert_array_equal(load_xa_cine([ds]).frames, pixels)


def test_extended_offset_table_without_its_lengths_is_ignored() -> None:
    pixels = _pixels()
    ds = _with_extended_table(pixels, lambda t: t)
    del ds.ExtendedOffsetTableLengths
    np.testing.assert_array_equal(load_xa_cine([roundtrip(ds)]).frames, pixels)


def test_sound_encapsulation_is_decoded_in_place() -> None:
    """No copy of the pixel data when the sender's offset table is right."""
    pixels = _pixels()
    fragments = [list(fragment_frame(s, 2)) for s in _codestreams(pixels, JPEGLSLossless)]
    ds = _xa_with(pixels, JPEGLSLossless, _encapsulate(fragments, _true_offsets(fragments)))
    assert framed(ds, len(pixels), "1.2.3", XACineError) is ds
    ds.PixelData = _encapsulate(fragments, _without_item_headers(fragments))
    assert framed(ds, len(pixels), "1.2.3", XACineError) is not ds
    extended = _with_extended_table(pixels, lambda table: table)
    assert framed(extended, len(pixels), "1.2.3", XACineError) is extended


def test_more_codestreams_than_number_of_frames_is_refused_with_counts() -> None:
    pixels = _pixels(5)
    fragments = [[s] for s in _codestreams(pixels, JPEGLSLossless)]
    ds = _xa_with(pixels, JPEGLSLossless, _encapsulate(fragments, []))
    ds.NumberOfFrames = 3
    with pytest.raises(XACineError, match=r"decodes to 5 frames, NumberOfFrames says 3"):
        load_xa_cine([roundtrip(ds)])


def test_fewer_fragments_than_frames_is_refused_with_counts() -> None:
    pixels = _pixels(3)
    fragments = [[s] for s in _codestreams(pixels, JPEGLSLossless)]
    ds = _xa_with(pixels, JPEGLSLossless, _encapsulate(fragments[:2], []))
    with pytest.raises(XACineError, match=r"2 fragments for 3 frames") as caught:
        load_xa_cine([ds])
    assert str(ds.SOPInstanceUID) in str(caught.value)


def test_ct_slice_in_several_fragments_with_a_wrong_table_decodes() -> None:
    datasets = make_ct_series(5, n_slices=3, rows=24, columns=24).datasets
    plain = load_ct_series(datasets)
    for ds in datasets:
        ds.compress(JPEGLSLossless)
        (stream,) = generate_frames(ds.PixelData, number_of_frames=1)
        fragments = [list(fragment_frame(stream, 3))]
        ds.PixelData = _encapsulate(fragments, _of_every_fragment(fragments))
    np.testing.assert_array_equal(load_ct_series(datasets).hu, plain.hu)


def test_unparseable_fragments_name_the_instance() -> None:
    datasets = make_ct_series(5, n_slices=3, rows=24, columns=24).datasets
    datasets[1].compress(RLELossless)
    datasets[1].PixelData = datasets[1].PixelData[:20]  # cut inside the first fragment
    with pytest.raises(SeriesGeometryError, match="malformed fragments") as caught:
        load_ct_series(datasets)
    assert str(datasets[1].SOPInstanceUID) in str(caught.value)
