"""Same content, another transfer syntax: one instance encoded by pydicom and dcmtk in each
syntax, compared with the file stored in Explicit VR Little Endian."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import make_ct_series, make_xa_cine
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from cardiogate.dicom.content import compare_with_stored
from peers import dcmtk


def _ct() -> Dataset:
    """A CT slice with an overlay (OW words, byte order matters), an ambiguous-VR element,
    a sequence, non-ASCII text and a private element."""
    ds = make_ct_series(11, n_slices=1, rows=32, columns=32).datasets[0]
    ds.SmallestImagePixelValue = 0  # US or SS (PS3.6): resolved by PixelRepresentation
    ds.add_new(0x60000010, "US", 32)  # OverlayRows
    ds.add_new(0x60000011, "US", 32)  # OverlayColumns
    ds.add_new(0x60000040, "CS", "G")  # OverlayType
    ds.add_new(0x60000050, "SS", [1, 1])  # OverlayOrigin
    ds.add_new(0x60000100, "US", 1)  # OverlayBitsAllocated
    ds.add_new(0x60000102, "US", 0)  # OverlayBitPosition
    ds.add_new(0x60003000, "OW", bytes(range(128)))  # OverlayData
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "1", "99TEST", "calcium"
    ds.ProcedureCodeSequence = [code]
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SeriesDescription = "Herz Kalzium Übersicht"
    ds.private_block(0x0009, "CARDIOGATE TEST", create=True).add_new(0x01, "LO", "a")
    return ds


def _xa() -> Dataset:
    return make_xa_cine(11, frames=4, rows=32, columns=32).datasets[0]


def _write(ds: Dataset, path: Path, syntax: UID, **options: int) -> Path:
    """``ds`` as a Part 10 file in ``syntax``: pydicom encodes, dcmtk where pydicom cannot."""
    out = copy.deepcopy(ds)
    if syntax == ExplicitVRBigEndian:
        source = _write(ds, path.with_suffix(".le.dcm"), ExplicitVRLittleEndian)
        subprocess.run([dcmtk("dcmconv"), "+tb", source, path], check=True)
    elif syntax == JPEGLosslessSV1:
        source = _write(ds, path.with_suffix(".le.dcm"), ExplicitVRLittleEndian)
        subprocess.run([dcmtk("dcmcjpeg"), "+e1", source, path], check=True)
    elif syntax.is_compressed:
        out.compress(syntax, generate_instance_uid=False, **options)
        out.save_as(path, enforce_file_format=True)
    else:
        out.file_meta.TransferSyntaxUID = syntax
        out.save_as(path, enforce_file_format=True)
    return path


def _stream(path: Path) -> bytes:
    """The data set of a Part 10 file, as a C-STORE carries it (no file meta)."""
    raw = path.read_bytes()
    return raw[144 + int.from_bytes(raw[140:144], "little") :]


@pytest.fixture
def stored(tmp_path: Path) -> Callable[[Dataset], Path]:
    def store(ds: Dataset) -> Path:
        return _write(ds, tmp_path / "stored.dcm", ExplicitVRLittleEndian)

    return store


SYNTAXES = [
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    RLELossless,
    JPEGLSLossless,
    JPEG2000Lossless,
    JPEGLosslessSV1,  # dcmtk's codec adds a DerivationDescription
]


@pytest.mark.parametrize("make", [_ct, _xa], ids=["CT", "XA"])
@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: UID(s).keyword)
def test_the_same_instance_in_another_syntax_is_the_same_content(
    tmp_path: Path, stored: Callable[[Dataset], Path], make: Callable[[], Dataset], syntax: UID
) -> None:
    ds = make()
    sent = _write(ds, tmp_path / "sent.dcm", syntax)
    result = compare_with_stored(stored(ds), _stream(sent), syntax)
    assert (result.same, result.reason) == (True, "same attributes and decoded pixels")
    assert result.stored_transfer_syntax == ExplicitVRLittleEndian


@pytest.mark.parametrize(
    "syntax", [ExplicitVRBigEndian, RLELossless, JPEGLSLossless], ids=lambda s: UID(s).keyword
)
def test_one_changed_pixel_is_different_content(
    tmp_path: Path, stored: Callable[[Dataset], Path], syntax: UID
) -> None:
    ds = _xa()
    path = stored(ds)
    frames = ds.pixel_array.copy()
    frames[2, 7, 9] ^= 1
    ds.PixelData = frames.tobytes()
    result = compare_with_stored(path, _stream(_write(ds, tmp_path / "s.dcm", syntax)), syntax)
    assert (result.same, result.reason) == (False, "decoded pixels of frame 3 differ")


def test_a_lossy_encoding_is_different_content(
    tmp_path: Path, stored: Callable[[Dataset], Path]
) -> None:
    ds = _ct()
    path = stored(ds)
    sent = _write(ds, tmp_path / "s.dcm", JPEGLSNearLossless, jls_error=3)
    result = compare_with_stored(path, _stream(sent), JPEGLSNearLossless)
    assert not result.same
    assert result.reason == "decoded pixels of frame 1 differ"


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda ds: setattr(ds, "SeriesDescription", "Herz Kalzium"), "SeriesDescription"),
        (lambda ds: setattr(ds, "SliceThickness", "2.5"), "SliceThickness"),
        (
            lambda ds: setattr(ds.ProcedureCodeSequence[0], "CodeValue", "2"),
            "ProcedureCodeSequence > CodeValue",
        ),
        (lambda ds: ds.add_new(0x60003000, "OW", bytes(range(1, 129))), "OverlayData"),
        (lambda ds: delattr(ds, "SmallestImagePixelValue"), "SmallestImagePixelValue"),
    ],
    ids=["text", "number", "in a sequence", "OW words", "removed"],
)
def test_a_changed_attribute_is_named(
    tmp_path: Path,
    stored: Callable[[Dataset], Path],
    edit: Callable[[Dataset], object],
    reason: str,
) -> None:
    ds = _ct()
    path = stored(ds)
    edit(ds)
    sent = _write(ds, tmp_path / "s.dcm", ExplicitVRBigEndian)
    result = compare_with_stored(path, _stream(sent), ExplicitVRBigEndian)
    assert (result.same, result.reason) == (False, f"attribute {reason} differs")


def test_text_in_another_character_set_and_private_values_are_the_same(
    tmp_path: Path, stored: Callable[[Dataset], Path]
) -> None:
    ds = _ct()
    path = stored(ds)
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: other bytes for "Ü", the same text
    ds[0x00091001].value = "b"  # private: not compared
    sent = _write(ds, tmp_path / "s.dcm", ImplicitVRLittleEndian)
    assert _stream(sent) != _stream(path)
    assert compare_with_stored(path, _stream(sent), ImplicitVRLittleEndian).same


def test_pixel_data_that_does_not_decode_is_different_not_an_error(
    tmp_path: Path, stored: Callable[[Dataset], Path]
) -> None:
    ds = _ct()
    path = stored(ds)
    ds.compress(RLELossless, generate_instance_uid=False)
    ds.PixelData = encapsulate([b"\x01" + b"\x00" * 63 + b"not RLE at all!!"])
    sent = _write(ds, tmp_path / "s.dcm", ExplicitVRLittleEndian)
    sent_meta = ds.file_meta.TransferSyntaxUID
    result = compare_with_stored(path, _stream(sent), sent_meta)
    assert not result.same
    assert result.reason.startswith("not comparable (")


def test_a_missing_stored_file_is_different_not_an_error(tmp_path: Path) -> None:
    ds = _ct()
    sent = _write(ds, tmp_path / "s.dcm", ExplicitVRLittleEndian)
    result = compare_with_stored(tmp_path / "gone.dcm", _stream(sent), ExplicitVRLittleEndian)
    assert (result.same, result.reason) == (False, "not comparable (FileNotFoundError)")


def test_the_stored_pixels_are_what_was_sent(stored: Callable[[Dataset], Path]) -> None:
    """The fixture itself: the overlay and pixels survive the write (else every test
    above would compare two empty things)."""
    ds = _xa()
    back = pydicom.dcmread(stored(ds))
    assert np.array_equal(back.pixel_array, ds.pixel_array)
    assert back.pixel_array.shape == (4, 32, 32)


def test_frames_too_large_are_not_decoded(tmp_path: Path) -> None:
    """A huge matrix declared over a few compressed bytes: not decoded, so different."""
    ds = _ct()
    ds.Rows = ds.Columns = 16384
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    stored = tmp_path / "stored.dcm"
    ds.save_as(stored, enforce_file_format=True)
    ds.add_new(0xFFFCFFFC, "OB", b"\x00" * 8)  # DataSetTrailingPadding: other bytes only
    sent = tmp_path / "sent.dcm"
    ds.save_as(sent, enforce_file_format=True)
    result = compare_with_stored(stored, _stream(sent), RLELossless)
    assert (result.same, result.reason) == (False, "not comparable (frames too large to decode)")
