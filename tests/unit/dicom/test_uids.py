from __future__ import annotations

import pytest

from cardiogate.dicom.uids import UID_PREFIX, derived_uid, is_valid_uid, require_uid
from cardiogate.errors import InvalidUIDError


@pytest.mark.parametrize("uid", ["1", "1.2.840.10008.1.2", "1." + "2" * 62, "0.0"])
def test_valid_uids(uid: str) -> None:
    assert is_valid_uid(uid)
    assert require_uid("SOPInstanceUID", uid) == uid


@pytest.mark.parametrize(
    "uid",
    ["", "../../x", "1..2", ".1", "1.", "1.2/3", "1.2\x00", "1." + "2" * 63, " 1.2", None, 12],
)
def test_invalid_uids_are_refused_without_echoing_the_value(uid: object) -> None:
    assert not is_valid_uid(uid)
    with pytest.raises(InvalidUIDError, match="SeriesInstanceUID") as e:
        require_uid("SeriesInstanceUID", uid)
    if isinstance(uid, str) and uid:
        assert uid not in str(e.value)


def test_strict_mode_refuses_leading_zeros() -> None:
    assert is_valid_uid("1.02.3")
    assert not is_valid_uid("1.02.3", strict=True)


def test_derived_uids_are_deterministic_valid_and_ours() -> None:
    uid = derived_uid("1.2.3", "calcium", "sr", "0.2.0")
    assert uid == derived_uid("1.2.3", "calcium", "sr", "0.2.0")
    assert uid.startswith(UID_PREFIX)
    assert is_valid_uid(uid, strict=True)
    assert len(uid) <= 64
    others = {
        derived_uid("1.2.3", "calcium", "sr", "0.2.1"),
        derived_uid("1.2.3", "calcium", "seg", "0.2.0"),
        derived_uid("1.2.4", "calcium", "sr", "0.2.0"),
        derived_uid("1.2.3", "stenosis", "sr", "0.2.0"),
    }
    assert uid not in others
    assert len(others) == 4


def test_derived_uid_parts_are_not_simply_concatenated() -> None:
    assert derived_uid("1.2", "3") != derived_uid("1.23", "")
