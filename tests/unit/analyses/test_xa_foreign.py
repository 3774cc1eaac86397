"""XA cines as foreign modalities and archives send them: every transfer syntax, frames in
several fragments with or without a (right or wrong) Basic Offset Table, as dcmtk writes
them. Frames come out as the phantom drew them, or the cine is refused with a reason."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import make_xa_cine
from foreign_dicom import SYNTAXES, Syntax, assert_close, written
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.uid import JPEG2000Lossless, JPEG2000MCLossless

from cardiogate.analyses.xa_cine import XACineError, load_xa_cine


def _cine(tmp_path: Path, side: int = 64) -> Path:
    path = tmp_path / "cine.dcm"
    make_xa_cine(4, frames=3, rows=side, columns=side).datasets[0].save_as(
        path, enforce_file_format=True
    )
    return path


@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: s.name)
def test_every_transfer_syntax_gives_the_same_frames(syntax: Syntax, tmp_path: Path) -> None:
    native = _cine(tmp_path)
    want = load_xa_cine([native]).frames
    (path,) = written([native], syntax, tmp_path / "out")
    cine = load_xa_cine([path])
    assert cine.frames.shape == want.shape
    assert_close(cine.frames, want, syntax, offset_free=syntax.renders)


def _without_item_headers(offsets: list[int], data: bytes) -> list[int]:
    """Offsets as a careless writer counts them: value bytes only, no item headers."""
    _, items = parse_fragments(data)
    starts = [items[0] + 8 + offset for offset in offsets]  # absolute item starts
    return [start - starts[0] - 8 * sum(1 for i in items[1:] if i < start) for start in starts]


SPOILS = {
    "as written": lambda offsets, data: offsets,
    "without item headers": _without_item_headers,
    "first frame only": lambda offsets, data: offsets[:1],
}


TABLES = [("+ot", spoil) for spoil in SPOILS] + [("-ot", "none")]


@pytest.mark.parametrize(("table", "spoil"), TABLES, ids=[f"{t} {s}" for t, s in TABLES])
@pytest.mark.parametrize(
    "encoder", [("dcmcjpeg", "+e1"), ("dcmcjpls",), ("dcmcrle",)], ids=lambda e: e[0]
)
def test_frames_in_1_kb_fragments_decode_whatever_the_offset_table(
    encoder: tuple[str, ...], table: str, spoil: str, tmp_path: Path
) -> None:
    """dcmtk's ``+fs 1`` cuts each frame into 1 kB fragments; ``+ot`` writes a Basic Offset
    Table (spoilt here as careless writers do), ``-ot`` leaves it empty."""
    native = _cine(tmp_path, side=96)
    want = load_xa_cine([native]).frames
    path = tmp_path / "fragmented.dcm"
    subprocess.run([*encoder, "+fs", "1", table, native, path], check=True, capture_output=True)
    ds = pydicom.dcmread(path)
    assert parse_fragments(ds.PixelData)[0] - 1 > 2 * len(want)  # several per frame
    offsets = parse_basic_offsets(ds.PixelData)
    if table == "+ot":
        spoiled = SPOILS[spoil](offsets, ds.PixelData)
        rest = ds.PixelData[8 + 4 * len(offsets) :]
        table_item = struct.pack("<HHL", 0xFFFE, 0xE000, 4 * len(spoiled))
        ds.PixelData = table_item + struct.pack(f"<{len(spoiled)}L", *spoiled) + rest
    np.testing.assert_array_equal(load_xa_cine([ds]).frames, want)


def test_a_transfer_syntax_without_a_decoder_is_refused_by_name(tmp_path: Path) -> None:
    ds = pydicom.dcmread(_cine(tmp_path))
    ds.compress(JPEG2000Lossless)
    ds.file_meta.TransferSyntaxUID = JPEG2000MCLossless
    with pytest.raises(XACineError, match="no decoder here") as caught:
        load_xa_cine([ds])
    assert JPEG2000MCLossless in str(caught.value)
    assert str(ds.SOPInstanceUID) in str(caught.value)
