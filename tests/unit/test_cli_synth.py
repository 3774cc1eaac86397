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
