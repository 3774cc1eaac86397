"""XA cines compressed by dcmtk's dcmcjpeg, as cath labs send them, load to the same frames.

JPEG Lossless, Non-Hierarchical, First-Order Prediction (process 14, selection value 1) is
what most cath labs send; dcmcjpeg writes it by default (``--encode-lossless-sv1``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.filewriter import dcmwrite
from pydicom.uid import JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1

from cardiogate.analyses.xa_cine import load_xa_cine
from peers import dcmtk
from xa_datasets import frames_u8, multiframe_xa, single_frame_xa


def _dcmcjpeg(source: Path, target: Path, *options: str) -> str:
    result = subprocess.run(
        [dcmtk("dcmcjpeg"), *options, str(source), str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return str(pydicom.dcmread(target, stop_before_pixels=True).file_meta.TransferSyntaxUID)


def _frames(bits: int) -> tuple[np.ndarray[Any, Any], dict[str, Any]]:
    """Smooth frames with a dark disc: 8-bit, or 12 bits stored in 16."""
    yy, xx = np.mgrid[0:64, 0:80]
    disc = (yy - 30) ** 2 + (xx - 40) ** 2 < 15**2
    ramp = 120 + yy + xx // 2 - 60 * disc
    stack = np.stack([ramp + 5 * k for k in range(5)])
    if bits == 8:
        return stack.astype(np.uint8), {}
    return (stack * 16).astype(np.uint16), {"BitsStored": 12, "HighBit": 11}


@pytest.mark.parametrize("bits", [8, 12])
def test_jpeg_lossless_sv1_cine_decodes_to_the_uncompressed_frames(
    tmp_path: Path, bits: int
) -> None:
    pixels, attributes = _frames(bits)
    source, target = tmp_path / "xa.dcm", tmp_path / "xa-jpeg.dcm"
    dcmwrite(source, multiframe_xa(pixels, **attributes), enforce_file_format=True)
    assert _dcmcjpeg(source, target, "--encode-lossless-sv1") == JPEGLosslessSV1
    plain, compressed = load_xa_cine([source]), load_xa_cine([target])
    np.testing.assert_array_equal(compressed.frames, plain.frames)
    np.testing.assert_array_equal(compressed.frames, pixels)
    assert compressed.mm_per_px == plain.mm_per_px
    assert compressed.frame_times_ms is not None
    np.testing.assert_allclose(compressed.frame_times_ms, plain.frame_times_ms)


def test_single_frame_instances_compressed_by_dcmtk(tmp_path: Path) -> None:
    pixels = frames_u8(4, rows=32, columns=40)
    targets = []
    for index, ds in enumerate(single_frame_xa(pixels)):
        source, target = tmp_path / f"in{index}.dcm", tmp_path / f"out{index}.dcm"
        dcmwrite(source, ds, enforce_file_format=True)
        assert _dcmcjpeg(source, target, "--encode-lossless-sv1") == JPEGLosslessSV1
        targets.append(target)
    np.testing.assert_array_equal(load_xa_cine(reversed(targets)).frames, pixels)


@pytest.mark.parametrize(
    ("bits", "option", "syntax"),
    [(8, "--encode-baseline", JPEGBaseline8Bit), (12, "--encode-extended", JPEGExtended12Bit)],
)
def test_lossy_jpeg_cine_decodes_close_to_the_originals(
    tmp_path: Path, bits: int, option: str, syntax: str
) -> None:
    pixels, attributes = _frames(bits)
    source, target = tmp_path / "xa.dcm", tmp_path / "xa-jpeg.dcm"
    dcmwrite(source, multiframe_xa(pixels, **attributes), enforce_file_format=True)
    # dcmcjpeg's lossy default (--scaling-pixel) stretches each frame's min..max to the full
    # range; --scaling-range keeps the stored values, as a modality's encoder does.
    assert _dcmcjpeg(source, target, option, "--scaling-range") == syntax
    frames = load_xa_cine([target]).frames
    assert frames.shape == pixels.shape
    error = np.abs(frames - pixels.astype(np.float32)).mean()
    assert error < 0.005 * 2**bits, error  # measured: 0.5 of 255, 0.8 of 4095
