"""Instances as other vendors' encoders write them: every transfer syntax a PACS may send,
written by dcmtk, GDCM and OpenJPH (real encoders, run as the command-line tools a site
would use), from files our phantoms wrote in Explicit VR Little Endian."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)


@dataclass(frozen=True)
class Syntax:
    """One way of writing an instance: the tool's command line and what it produces."""

    name: str
    command: tuple[str, ...]  # input and output paths are appended
    uid: UID
    lossless: bool
    unsigned_only: bool = False  # the encoder refuses signed pixels
    # dcmtk's lossy JPEG codec stores rendered values (Pixel Intensity Relationship DISP,
    # the range shifted to start at 0) with a Rescale back to the original where the
    # image has one (CT), none where it has not (XA)
    renders: bool = False


SYNTAXES = (
    Syntax("implicit", ("dcmconv", "+ti"), ImplicitVRLittleEndian, True),
    Syntax("explicit", ("dcmconv", "+te"), ExplicitVRLittleEndian, True),
    Syntax("big endian", ("dcmconv", "+tb"), ExplicitVRBigEndian, True),
    Syntax("deflated", ("dcmconv", "+td"), DeflatedExplicitVRLittleEndian, True),
    Syntax("jpeg baseline", ("dcmcjpeg", "+eb"), JPEGBaseline8Bit, False, renders=True),
    Syntax("jpeg extended", ("dcmcjpeg", "+ee"), JPEGExtended12Bit, False, renders=True),
    Syntax("jpeg lossless", ("dcmcjpeg", "+el"), JPEGLossless, True),
    Syntax("jpeg lossless sv1", ("dcmcjpeg", "+e1"), JPEGLosslessSV1, True),
    Syntax("jpeg-ls", ("dcmcjpls", "+el"), JPEGLSLossless, True),
    Syntax("jpeg-ls near", ("dcmcjpls", "+en"), JPEGLSNearLossless, False, unsigned_only=True),
    Syntax("rle", ("dcmcrle",), RLELossless, True),
    Syntax("jpeg 2000 lossless", ("gdcmconv", "--j2k"), JPEG2000Lossless, True),
    Syntax("jpeg 2000", ("gdcmconv", "--j2k", "--lossy", "-r", "5"), JPEG2000, False),
    Syntax("htj2k lossless", ("ojph_compress", "-reversible", "true"), HTJ2KLossless, True, True),
    Syntax("htj2k", ("ojph_compress", "-qstep", "0.002"), HTJ2K, False, unsigned_only=True),
)


def written(paths: list[Path], syntax: Syntax, out: Path) -> list[Path]:
    """``paths`` rewritten in ``syntax`` under ``out``; skips when the tool is absent."""
    if shutil.which(syntax.command[0]) is None:
        pytest.skip(f"{syntax.command[0]} is not installed")
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for path in paths:
        target = out / path.name
        if syntax.command[0] == "ojph_compress":
            _htj2k(path, syntax, target)
        else:
            subprocess.run([*syntax.command, path, target], check=True, capture_output=True)
        assert pydicom.dcmread(target).file_meta.TransferSyntaxUID == syntax.uid
        results.append(target)
    return results


def _htj2k(path: Path, syntax: Syntax, target: Path) -> None:
    """Each frame through OpenJPH's ojph_compress (via PGM), encapsulated (PS3.5 A.4.11)."""
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    assert frames.dtype.kind == "u", "PGM holds unsigned samples only"
    streams = []
    for k, frame in enumerate(frames):
        pgm, j2c = target.with_suffix(f".{k}.pgm"), target.with_suffix(f".{k}.j2c")
        maxval = 2 ** int(ds.BitsStored) - 1
        sample = ">u1" if maxval < 256 else ">u2"
        pgm.write_bytes(
            f"P5\n{ds.Columns} {ds.Rows}\n{maxval}\n".encode() + frame.astype(sample).tobytes()
        )
        subprocess.run(
            [*syntax.command, "-i", pgm, "-o", j2c, "-num_decomps", "3"],
            check=True,
            capture_output=True,
        )
        streams.append(j2c.read_bytes())
    ds.PixelData = encapsulate(streams)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = syntax.uid
    ds.save_as(target, enforce_file_format=True)


def assert_close(
    got: np.ndarray, want: np.ndarray, syntax: Syntax, *, offset_free: bool = False
) -> None:
    """Equal for a lossless syntax; for a lossy one, a mean absolute error within 3 % of
    the range and a correlation of at least 0.98 (a wrong sign, offset or bit depth
    misses both by far). ``offset_free``: compared after removing each one's mean."""
    if syntax.lossless:
        np.testing.assert_array_equal(got, want)
        return
    got, want = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
    if offset_free:
        got, want = got - got.mean(), want - want.mean()
    assert float(np.abs(got - want).mean()) <= 0.03 * float(want.max() - want.min())
    assert float(np.corrcoef(got, want)[0, 1]) >= 0.98
