"""``cardiogate demo``: one command, the whole path, with the shipped models; the summary
matches the phantoms' truth and the demo's PACS holds the SR, the SEG and the key images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom

from cardiogate.demo import format_summary
from cardiogate.tasks import configure_tasks


def test_demo_runs_end_to_end_and_matches_the_truth(tmp_path: Path) -> None:
    kept = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "cardiogate", "demo", "--json", "--keep", str(kept)],
        cwd=tmp_path,  # not the repository: the shipped models are found from anywhere
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert "not for clinical use" in proc.stderr  # the progress lines open with the notice

    assert summary["tasks"] == ["stenosis", "calcium"]  # each task's demo, in routing order
    calcium, stenosis = summary["calcium"], summary["stenosis"]
    assert calcium["state"] == stenosis["state"] == "delivered"
    found, truth = calcium["agatston"]["total"], calcium["truth"]["agatston"]["total"]
    assert abs(found - truth) <= max(5.0, 0.1 * truth)
    assert calcium["category"]["classic"] == calcium["truth"]["category"]["classic"]

    assert [t["percent_stenosis"] for t in stenosis["truth"]] == [75.0]
    severe = [lesion for lesion in stenosis["lesions"] if lesion["cad_rads"] == "4A"]
    assert severe, stenosis["lesions"]
    assert 70 <= severe[0]["percent_stenosis"] < 100
    assert severe[0]["grade"].startswith("70-99%")

    received = summary["received"]
    assert {kind: len(paths) for kind, paths in received.items()} == {
        "SR": 2,
        "SEG": 1,
        "KEY": 3,
        "SUMMARY": 2,
    }
    for kind, modality in (("SR", "SR"), ("SEG", "SEG")):
        for path in received[kind]:
            assert Path(path).parent == kept / "received"
            assert pydicom.dcmread(path).Modality == modality
    for path in received["KEY"]:
        key = pydicom.dcmread(path)
        assert key.BurnedInAnnotation == "YES"
        assert "not for diagnostic use" in key.ImageComments

    text = format_summary(summary, configure_tasks())
    assert "not for clinical use" in text
    assert "Calcium (Agatston)      found     truth" in text  # each task words its part
    assert "truth: LAD at 0.35 of its length, 75%" in text
