"""``cardiogate analyze``: the same routing and analysis as the service, on a folder."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

from cardiogate_phantoms import make_ct_series, make_xa_cine, write_series

from tiny_model import write_dark_spot_model, write_threshold_model


def _analyze(folder: Path, models: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cardiogate",
            "analyze",
            str(folder),
            "--models-dir",
            str(models),
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_analyze_reports_calcium_and_explains_ignored_series(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_threshold_model(models / "calcium")
    calcium = make_ct_series(61, n_slices=12, rows=64, columns=64, pixel_spacing_mm=6.0)
    write_series(calcium, tmp_path / "study" / "calcium")
    write_series(
        make_ct_series(62, n_slices=12, rows=64, columns=64, pixel_spacing_mm=6.0, contrast=True),
        tmp_path / "study" / "cta",
    )

    result = _analyze(tmp_path / "study", models, "--json")
    assert result.returncode == 0, result.stderr
    entries = {e["SeriesInstanceUID"]: e for e in json.loads(result.stdout)}
    reported = entries[calcium.datasets[0].SeriesInstanceUID]
    assert reported["task"] == "calcium"
    assert set(reported) >= {"agatston", "volume_mm3", "category", "lesions", "model"}
    truth = json.loads((tmp_path / "study" / "calcium" / "truth.json").read_text())
    assert set(reported["agatston"]) == set(truth["agatston"])  # the ground truth's shape
    assert set(reported["volume_mm3"]) == set(truth["volume_mm3"])
    assert set(reported["agatston"]) == {"total", "LM", "LAD", "LCX", "RCA"}
    assert reported["category"]["classic"] in {"0", "1-10", "11-100", "101-400", ">400"}
    [ignored] = [e for e in entries.values() if e["state"] == "ignored"]
    assert "contrast" in ignored["reason"]

    table = _analyze(tmp_path / "study" / "calcium", models)
    assert table.returncode == 0, table.stderr
    assert "Agatston" in table.stdout
    assert f"needs review ({reported['review_reason']})" in table.stdout  # the rule is unsure
    assert "not for clinical use" in table.stdout


def test_analyze_reports_stenosis_in_the_shape_of_the_truth(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_dark_spot_model(models / "stenosis", cut=0.3)  # a plumbing rule, not a detector
    cine = make_xa_cine(5, frames=12, stenoses=[{"vessel": "LAD", "percent": 80}], artery="LCA")
    write_series(cine, tmp_path / "xa")

    result = _analyze(tmp_path / "xa", models, "--json")
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)  # a list, even of one series
    assert entry["state"] == "reported"
    assert entry["task"] == "stenosis"
    assert set(entry) >= {"significant", "lesions", "frames_used", "needs_review", "model"}
    assert isinstance(entry["significant"], bool)
    assert 1 <= len(entry["frames_used"]) <= 8
    for lesion in entry["lesions"]:
        assert set(lesion) >= {"frame", "x_px", "y_px", "percent_stenosis", "grade", "probability"}
    truth = json.loads((tmp_path / "xa" / "truth.json").read_text())
    [lesion] = truth["lesions"]
    assert set(lesion) >= {"percent_stenosis", "vessel", "positions_px"}
    assert len(lesion["positions_px"]) == 12

    table = _analyze(tmp_path / "xa", models)
    assert table.returncode == 0, table.stderr
    assert "stenosis" in table.stdout
    assert "not for clinical use" in table.stdout


def test_analyze_of_nothing_fails_clearly(tmp_path: Path) -> None:
    result = _analyze(tmp_path / "missing", tmp_path)
    assert result.returncode == 2
    assert "no such file or folder" in result.stderr


def test_analyze_ignores_a_cta_whose_header_says_nothing(tmp_path: Path) -> None:
    """The image check (blood pool), not the header, finds this CTA: ``ignored`` with the
    evidence, as the service does, not ``failed``."""
    models = tmp_path / "models"
    write_threshold_model(models / "calcium")
    cta = make_ct_series(
        62, contrast=True, n_slices=16, rows=128, columns=128, pixel_spacing_mm=1.5
    )
    for ds in cta.datasets:
        del ds.ContrastBolusAgent, ds.ContrastBolusRoute, ds.ContrastBolusVolume
        ds.SeriesDescription, ds.ProtocolName = "Heart 3.0mm", "Cardiac"
    write_series(cta, tmp_path / "study" / "cta")

    result = _analyze(tmp_path / "study", models, "--json")
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)  # one series: a list of one
    assert entry["SeriesInstanceUID"] == cta.datasets[0].SeriesInstanceUID
    assert (entry["state"], entry["task"]) == ("ignored", "calcium")
    assert entry["reason"].startswith("not scored: contrast-enhanced (blood pool median ")


def test_analyze_lists_the_files_it_skipped_and_counts_in_good_english(tmp_path: Path) -> None:
    """One file that is no DICOM, one instance without a series, and a one-instance series:
    the table says "1 instance" and names each skipped file with its reason; beside
    ``--json`` (a list) the same note goes to stderr."""
    one = make_ct_series(63, n_slices=1, rows=32, columns=32, keep_phantom=False)
    write_series(one, tmp_path / "study")  # and its truth.json, which is no DICOM
    orphan = copy.deepcopy(one.datasets[0])
    del orphan.SeriesInstanceUID
    orphan.save_as(tmp_path / "study" / "orphan.dcm", enforce_file_format=True)

    table = _analyze(tmp_path / "study", tmp_path / "no-models")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == f"series {one.datasets[0].SeriesInstanceUID} (1 instance): ignored"
    assert "instances" not in table.stdout
    assert "skipped 2 files:" in lines
    assert "  1 file: not a DICOM file (no DICM prefix, PS3.10 7.1)" in lines
    assert "    truth.json" in lines
    assert "  1 file: no SeriesInstanceUID" in lines
    assert "    orphan.dcm" in lines

    result = _analyze(tmp_path / "study", tmp_path / "no-models", "--json")
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)
    assert (entry["state"], entry["instances"]) == ("ignored", 1)
    assert "skipped 2 files:" in result.stderr
