from __future__ import annotations

from pathlib import Path

import pytest

from cardiogate.dicom.spool import Spool
from cardiogate.errors import InvalidUIDError, SpoolError


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    s = Spool(tmp_path / "spool")
    s.prepare()
    return s


def test_write_is_whole_and_named_by_uids(spool: Spool) -> None:
    rel = spool.relative_path("1.2", "1.2.3", "1.2.3.4")
    assert rel == "1.2/1.2.3/1.2.3.4.dcm"
    spool.write(rel, [b"head", memoryview(b"-body")])
    assert spool.read(rel) == b"head-body"
    assert list(spool.files()) == [rel]
    assert list(spool.tmp.iterdir()) == []


def test_rewrite_replaces_atomically(spool: Spool) -> None:
    rel = spool.relative_path("1", "2", "3")
    spool.write(rel, [b"old"])
    spool.write(rel, [b"newer"])
    assert spool.read(rel) == b"newer"


def test_uids_are_validated_before_a_path_is_built(spool: Spool) -> None:
    with pytest.raises(InvalidUIDError):
        spool.relative_path("1.2", "../..", "1.2.3")
    with pytest.raises(SpoolError):
        spool.absolute("../outside.dcm")
    with pytest.raises(SpoolError):
        spool.absolute(".tmp/x.dcm")


def test_prepare_clears_partial_files(tmp_path: Path) -> None:
    s = Spool(tmp_path / "spool")
    s.prepare()
    (s.tmp / "abc.part").write_bytes(b"half")
    assert s.prepare() == 1
    assert list(s.tmp.iterdir()) == []


def test_write_failure_is_a_spool_error_and_leaves_nothing(spool: Spool) -> None:
    rel = spool.relative_path("1", "2", "3")
    (spool.root / "1").write_bytes(b"a file where a directory must go")
    with pytest.raises(SpoolError, match="cannot write"):
        spool.write(rel, [b"x"])
    assert list(spool.tmp.iterdir()) == []


def test_replicas_sharing_a_spool_clear_only_their_own_partial_files(tmp_path: Path) -> None:
    a, b = Spool(tmp_path / "spool", "a"), Spool(tmp_path / "spool", "b")
    a.prepare()
    b.prepare()
    (a.tmp / "x.part").write_bytes(b"a's")
    (b.tmp / "y.part").write_bytes(b"b's, being written")
    assert a.prepare() == 1  # a restarts
    assert [p.name for p in b.tmp.iterdir()] == ["y.part"]
    rel = b.relative_path("1", "2", "3")
    b.write(rel, [b"whole"])
    assert list(a.files()) == [rel]  # temporary directories are not instances
