"""``cardiogate synth``: a series on disk plus its truth.json."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from cardiogate.cli import main


def test_synth_ct_writes_series_and_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ct"
    assert (
        main(
            [
                "synth",
                "ct",
                "--seed",
                "3",
                "--out",
                str(out),
                "--slices",
                "4",
                "--rows",
                "32",
                "--columns",
                "32",
            ]
        )
        == 0
    )
    files = sorted(out.glob("*.dcm"))
    assert len(files) == 4
    truth = json.loads((out / "truth.json").read_text())
    first = pydicom.dcmread(files[0])
    assert truth["series_instance_uid"] == first.SeriesInstanceUID
    assert truth["number_of_instances"] == 4
    assert "wrote 4 file(s)" in capsys.readouterr().out


def test_synth_xa_writes_one_multiframe_instance(tmp_path: Path) -> None:
    out = tmp_path / "xa"
    assert (
        main(
            [
                "synth",
                "xa",
                "--seed",
                "3",
                "--out",
                str(out),
                "--frames",
                "5",
                "--rows",
                "32",
                "--columns",
                "32",
            ]
        )
        == 0
    )
    [path] = out.glob("*.dcm")
    ds = pydicom.dcmread(path)
    assert (ds.Modality, int(ds.NumberOfFrames)) == ("XA", 5)
    assert json.loads((out / "truth.json").read_text())["modality"] == "XA"


def _synth_xa(out: Path, *extra: str) -> int:
    args = ["synth", "xa", "--seed", "3", "--out", str(out), "--frames", "3"]
    return main([*args, "--rows", "64", "--columns", "64", *extra])


def test_synth_xa_draws_the_stenosis_asked_for(tmp_path: Path) -> None:
    assert _synth_xa(tmp_path, "--stenosis", "LAD:0.35:75:6", "--stenosis", "D1:0.3:40") == 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    lesions = [(le["vessel"], le["percent_stenosis"]) for le in truth["lesions"]]
    assert lesions == [("LAD", 75.0), ("D1", 40.0)]
    assert truth["significant"] is True
    assert all(len(le["positions_px"]) == 3 for le in truth["lesions"])


def test_synth_xa_normal_has_no_lesion(tmp_path: Path) -> None:
    assert _synth_xa(tmp_path, "--normal", "--artery", "RCA") == 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["lesions"] == []
    assert truth["significant"] is False
    assert truth["artery"] == "RCA"


def test_synth_xa_refuses_an_unknown_vessel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _synth_xa(tmp_path, "--stenosis", "LADX:0.3:70") == 2
    assert "unknown vessel 'LADX'" in capsys.readouterr().err


def test_synth_xa_refuses_a_malformed_stenosis(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _synth_xa(Path("unused"), "--stenosis", "LAD:x:70")
    assert "must be numbers" in capsys.readouterr().err
