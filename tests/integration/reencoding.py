"""Instances re-encoded by dcmtk and sent as they are on disk, for the transfer syntax tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)
from pynetdicom import AE, _config

from peers import dcmtk

# dcmtk tool and options, and the transfer syntax it writes
REENCODERS = {
    ExplicitVRBigEndian: ["dcmconv", "+tb"],
    JPEGLSLossless: ["dcmcjpls"],
    RLELossless: ["dcmcrle"],
    JPEGLosslessSV1: ["dcmcjpeg", "+e1"],  # also adds a DerivationDescription
}


def reencode(ds: Dataset, folder: Path, syntax: UID) -> Path:
    """``ds`` written in Explicit VR Little Endian, then re-encoded by dcmtk."""
    folder.mkdir(parents=True, exist_ok=True)
    source, target = folder / f"{ds.SOPInstanceUID}.le", folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(source, enforce_file_format=True)
    tool, *options = REENCODERS[syntax]
    subprocess.run([dcmtk(tool), *options, source, target], check=True, timeout=60)
    source.unlink()
    assert pydicom.dcmread(target).file_meta.TransferSyntaxUID == syntax
    return target


@contextmanager
def _as_on_disk() -> Iterator[None]:
    """pynetdicom sends a file's data set bytes unchanged (else it decodes and re-encodes)."""
    before = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        yield
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = before


def send_files(port: int, paths: list[Path], syntax: UID) -> list[int]:
    """Send files' data sets as they are on disk over one association proposing ``syntax``
    alone for their SOP classes; return the C-STORE statuses."""
    ae = AE(ae_title="TESTSCU")
    for sop_class in {pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID for p in paths}:
        ae.add_requested_context(sop_class, [syntax])
    assoc = ae.associate("127.0.0.1", port, ae_title="CARDIOGATE")
    assert assoc.is_established, "association was not accepted"
    try:
        with _as_on_disk():
            return [int(assoc.send_c_store(p).Status) for p in paths]
    finally:
        assoc.release()


def data_set(path: Path) -> bytes:
    """A Part 10 file's data set, as a C-STORE carries it (after the file meta)."""
    raw = path.read_bytes()
    return raw[144 + int.from_bytes(raw[140:144], "little") :]
