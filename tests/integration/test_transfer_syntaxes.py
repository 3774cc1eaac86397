"""What the SCP negotiates: every transfer syntax a PACS may send and we can decode,
Explicit VR Big Endian included, for every storage SOP class; a Big Endian instance is
stored byte for byte and reads back (dcmtk's storescu and pynetdicom as the SCUs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import make_ct_series
from pydicom import uid
from pydicom.uid import ExplicitVRBigEndian
from pynetdicom import AE
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import CTImageStorage, XRayAngiographicImageStorage  # type: ignore[attr-defined]
from reencoding import data_set, reencode, send_files

from cardiogate.analyses.ct_volume import load_ct_series
from peers import RunningSCP, dcmtk

SUCCESS = 0x0000

ACCEPTED = [
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLSLossless,
    uid.JPEGLSNearLossless,
    uid.JPEG2000Lossless,
    uid.JPEG2000,
    uid.HTJ2KLossless,
    uid.HTJ2KLosslessRPCL,
    uid.HTJ2K,
    uid.RLELossless,
]
# No decoder here: an SCU offering these as well gets one of ACCEPTED instead.
REFUSED = [uid.JPEG2000MCLossless, uid.JPEG2000MC, uid.MPEG2MPML, uid.MPEG4HP41, uid.HEVCMP51]


def _accepted(port: int, sop_class: str, syntaxes: list[str]) -> set[str]:
    """The transfer syntaxes accepted when each is proposed in a context of its own."""
    ae = AE(ae_title="TESTSCU")
    for syntax in syntaxes:
        ae.add_requested_context(sop_class, [syntax])
    assoc = ae.associate("127.0.0.1", port, ae_title="CARDIOGATE")
    assert assoc.is_established
    try:
        return {cx.transfer_syntax[0] for cx in assoc.accepted_contexts}
    finally:
        assoc.release()


@pytest.mark.parametrize("sop_class", [CTImageStorage, XRayAngiographicImageStorage])
def test_every_decodable_syntax_is_accepted(scp: RunningSCP, sop_class: str) -> None:
    assert all(pydicom.uid.UID(s).is_transfer_syntax for s in ACCEPTED + REFUSED)
    assert _accepted(scp.port, sop_class, ACCEPTED + REFUSED) == set(ACCEPTED)


def test_big_endian_is_accepted_for_every_storage_class(scp: RunningSCP) -> None:
    classes = [cx.abstract_syntax for cx in AllStoragePresentationContexts]
    refused = []
    for start in range(0, len(classes), 120):  # at most 128 contexts an association
        ae = AE(ae_title="TESTSCU")
        for sop_class in classes[start : start + 120]:
            ae.add_requested_context(sop_class, [ExplicitVRBigEndian])
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="CARDIOGATE")
        assert assoc.is_established
        accepted = {cx.abstract_syntax for cx in assoc.accepted_contexts}
        assoc.release()
        refused += [c for c in classes[start : start + 120] if c not in accepted]
    assert refused == []


def _check_stored_as_sent(scp: RunningSCP, sent: list[Path], originals: list[object]) -> None:
    """Each file's data set stored byte for byte, its file meta naming Big Endian, and the
    CT loader reading the same HU as from the original."""
    stored = []
    for path in sent:
        row = scp.store.get_instance(pydicom.dcmread(path).SOPInstanceUID)
        assert row is not None
        stored.append(scp.spool.absolute(row.path))
        assert data_set(stored[-1]) == data_set(path)
        back = pydicom.dcmread(stored[-1])
        assert back.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
        assert np.array_equal(back.pixel_array, pydicom.dcmread(path).pixel_array)
    volume = load_ct_series(stored)
    expected = load_ct_series(originals)  # type: ignore[arg-type]
    assert np.array_equal(volume.hu, expected.hu)


def test_pynetdicom_proposing_only_big_endian_is_stored(scp: RunningSCP, tmp_path: Path) -> None:
    ct = make_ct_series(71, n_slices=3, rows=64, columns=64).datasets
    sent = [reencode(ds, tmp_path, ExplicitVRBigEndian) for ds in ct]
    assert send_files(scp.port, sent, ExplicitVRBigEndian) == [SUCCESS] * 3
    _check_stored_as_sent(scp, sent, ct)


STORESCU_BIG_ENDIAN_ONLY = """\
[[TransferSyntaxes]]
[BigEndian]
TransferSyntax1 = BigEndianExplicit
[[PresentationContexts]]
[CTBigEndian]
PresentationContext1 = CTImageStorage\\BigEndian
[[Profiles]]
[BigEndianOnly]
PresentationContexts = CTBigEndian
"""


def test_storescu_proposing_only_big_endian_is_stored(scp: RunningSCP, tmp_path: Path) -> None:
    ct = make_ct_series(72, n_slices=3, rows=64, columns=64).datasets
    sent = [reencode(ds, tmp_path / "files", ExplicitVRBigEndian) for ds in ct]
    config = tmp_path / "storescu.cfg"
    config.write_text(STORESCU_BIG_ENDIAN_ONLY)
    proc = subprocess.run(
        [dcmtk("storescu"), "-aec", "CARDIOGATE", "-to", "10", "-ta", "10", "-td", "30"]
        + ["-xf", str(config), "BigEndianOnly", "127.0.0.1", str(scp.port)]
        + [str(p) for p in sent],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TCP_NODELAY": "1"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_stored_as_sent(scp, sent, ct)
