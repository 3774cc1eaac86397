"""The local codes fit their VRs and name every category the analyses produce; the
procedure codes are from the context groups their places name."""

from __future__ import annotations

import pytest
from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from cardiogate.reports.codes import (
    CT_PERFORMED,
    CT_PROCEDURE,
    LOCAL_SCHEME,
    XA_PERFORMED,
    XA_PROCEDURE,
    cac_drs_value,
    classic_value,
    grade_value,
)
from cardiogate.tasks.calcium.scoring import cac_drs, classic_category
from cardiogate.tasks.stenosis.geometry import grade


@pytest.mark.parametrize("total", [0.0, 5.0, 50.0, 250.0, 1000.0])
def test_every_classic_category_has_a_distinct_code(total: float) -> None:
    code = classic_value(classic_category(total))
    assert code.scheme_designator == LOCAL_SCHEME
    assert len(code.value) <= 16
    assert ">" not in code.value


def test_classic_codes_are_distinct_and_unknown_ones_refused() -> None:
    values = {classic_value(classic_category(t)).value for t in (0, 5, 50, 250, 1000)}
    assert len(values) == 5
    with pytest.raises(ValueError, match="unknown classic"):
        classic_value("2-3")


@pytest.mark.parametrize(
    "agatston",
    [
        {"total": 0.0},
        {"total": 1500.0, "LM": 1.0, "LAD": 1.0, "LCX": 1.0, "RCA": 1497.0},
    ],
)
def test_cac_drs_codes_fit_a_short_string(agatston: dict[str, float]) -> None:
    code = cac_drs_value(cac_drs(agatston))
    assert len(code.value) <= 16


@pytest.mark.parametrize("percent", [0.0, 10.0, 30.0, 60.0, 75.0, 100.0])
def test_grade_codes_fit_and_name_the_cad_rads_band(percent: float) -> None:
    code = grade_value(*grade(percent))
    assert len(code.value) <= 16
    assert len(code.meaning) <= 64
    assert code.meaning.startswith("CAD-RADS ")


# CID 100 as dcmtk ships it (PS3.16 2019a, dcmsr/libcmr/cid100.cc), the SRT codes by their
# SNOMED CT successors: what validators built on an older edition accept. It has neither
# SCT 77343006 Angiography nor LN 43468-8 XR unspecified body region.
CID_100_2019A = {
    ("SCT", "363679005"),  # P0-0099A Imaging procedure
    ("SCT", "258177008"),  # P5-09051 Magnetic resonance imaging guidance
    ("SCT", "433139009"),  # P5-0907F
    ("SCT", "446315002"),  # P5-70694
    ("SCT", "443271005"),  # P5-080FF
    ("SCT", "764704008"),  # P5-08118
    ("DCM", "126020"),
    ("DCM", "126021"),
    ("DCM", "126022"),
    ("LN", "25045-6"),
    ("LN", "25056-3"),
    ("LN", "49118-3"),
    ("LN", "44136-0"),
    ("LN", "44139-4"),
    ("LN", "39142-5"),
    ("LN", "39632-5"),
    ("RADLEX", "RPID5427"),
}


@pytest.mark.parametrize("code", [CT_PROCEDURE, XA_PROCEDURE])
def test_procedures_reported_are_in_cid_100_old_and_new(code: Code) -> None:
    assert (code.scheme_designator, code.value) in CID_100_2019A
    current = {
        (scheme, getattr(getattr(codes, scheme), keyword).value)
        for scheme, keywords in cid_concepts[100].items()
        for keyword in keywords
    }
    assert (code.scheme_designator, code.value) in current


@pytest.mark.parametrize("code", [CT_PERFORMED, XA_PERFORMED])
def test_performed_procedures_are_cardiac_procedures(code: Code) -> None:
    cardiac = {getattr(codes.SCT, keyword).value for keyword in cid_concepts[3757]["SCT"]}
    assert code.value in cardiac
