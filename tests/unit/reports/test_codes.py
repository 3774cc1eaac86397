"""The local codes fit their VRs and name every category the analyses produce."""

from __future__ import annotations

import pytest

from cardiogate.analyses.calcium import cac_drs, classic_category
from cardiogate.analyses.stenosis_geometry import grade
from cardiogate.reports.codes import LOCAL_SCHEME, cac_drs_value, classic_value, grade_value


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
