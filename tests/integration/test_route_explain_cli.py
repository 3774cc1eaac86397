"""``cardiogate route explain`` as an operator runs it: on a folder of DICOM files, and on
a study the service has stored (its SQLite database in the data directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cardiogate_phantoms import make_ct_series, write_series

from cardiogate.store import Store
from cardiogate.store.jobs import JobQueue
from store_records import ct_instance
from tiny_model import write_model

STUDY = "1.2.826.0.1.3680043.10.19.2"
ROUTING = '{"calcium_slice_thickness_mm": [0.5, 3.5]}'


def _explain(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cardiogate", "route", "explain", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_folder_table_names_the_rule_and_the_skipped_files(tmp_path: Path) -> None:
    models = write_model(tmp_path / "models" / "calcium", task="calcium").parent
    series = make_ct_series(
        7, n_slices=10, rows=32, columns=32, slice_thickness_mm=1.0, keep_phantom=False
    )
    write_series(series, tmp_path / "thin")
    uid = series.datasets[0].SeriesInstanceUID

    result = _explain(str(tmp_path / "thin"), "--models-dir", str(models))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"study {series.datasets[0].StudyInstanceUID}: 1 series"
    assert lines[2].split()[:4] == ["2", "CT", "10", "Calcium"]
    assert lines[2].endswith("-          slice thickness 1 mm is outside 2-3.5 mm")
    assert "  1 file: not a DICOM file (no DICM prefix, PS3.10 7.1)" in lines
    assert "    truth.json" in lines

    # the documented example: widen the window and the thin-slice series is routed
    env = {**os.environ, "CARDIOGATE_ROUTING": ROUTING}
    wide = _explain(str(tmp_path / "thin"), "--models-dir", str(models), "--json", env=env)
    assert wide.returncode == 0, wide.stderr
    [entry] = json.loads(wide.stdout)  # a list, even of one
    assert (entry["SeriesInstanceUID"], entry["task"]) == (uid, "calcium")
    assert entry["reason"] == "non-contrast axial CT, 1 mm slices"
    assert "skipped 1 file:" in wide.stderr  # beside JSON, the notes go to stderr


def test_a_stored_study_shows_each_series_with_its_job(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = Store(f"sqlite:///{data / 'cardiogate.db'}")
    store.create_schema()
    try:
        for number, modality in ((1, "MR"), (2, "CT")):
            series = f"{STUDY}.{number}"
            store.record_instance(
                ct_instance(
                    STUDY,
                    series,
                    Modality=modality,
                    SeriesNumber=number,
                    path=f"{STUDY}/{series}/1.dcm",
                )
            )
        JobQueue(store).ignore(f"{STUDY}.1", STUDY, "modality MR is not analysed")
    finally:
        store.dispose()

    result = _explain(STUDY, "--data-dir", str(data), "--models-dir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    entries = {e["SeriesInstanceUID"]: e for e in json.loads(result.stdout)}
    assert entries[f"{STUDY}.1"]["job"] == {
        "state": "ignored",
        "reason": "modality MR is not analysed",
    }
    assert entries[f"{STUDY}.1"]["reason"] == "modality MR is not analysed"
    assert entries[f"{STUDY}.2"]["job"] is None  # still receiving: not routed yet
    assert entries[f"{STUDY}.2"]["reason"] == "not an axial series (ImageType missing)"
    assert "no model in" in result.stderr

    table = _explain(STUDY, "--data-dir", str(data), "--models-dir", str(tmp_path))
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("1 "))
    assert row.split()[:2] == ["1", "MR"]
    assert "ignored" in row.split()
    assert row.endswith("modality MR is not analysed")


def test_an_unknown_study_or_path_fails_clearly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = Store(f"sqlite:///{data / 'cardiogate.db'}")
    store.create_schema()
    store.dispose()

    unknown = _explain("1.2.3.4", "--data-dir", str(data), "--models-dir", str(tmp_path))
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "cardiogate: the database has no study 1.2.3.4"

    nothing = _explain(str(tmp_path / "missing"), "--models-dir", str(tmp_path))
    assert nothing.returncode == 2
    assert "no such file or folder, and not a StudyInstanceUID" in nothing.stderr

    no_db = _explain("1.2.3.4", "--data-dir", str(tmp_path / "empty"), "--models-dir", "x")
    assert no_db.returncode == 2
    assert "no database in" in no_db.stderr
