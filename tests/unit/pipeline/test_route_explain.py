"""``route explain``'s core: a folder's series (real Part 10 files from the phantoms) and a
stored study's series (a real store, routed by the real worker) each get the rule that
routes them or the reason none does, as the service decides it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cardiogate_phantoms import make_ct_series, write_series
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cardiogate.config import load_settings
from cardiogate.dicom.spool import Spool
from cardiogate.inference import InferenceEngine
from cardiogate.inference.engine import load_model
from cardiogate.pipeline.explain import (
    Explained,
    as_json,
    explain_folder,
    explain_study,
    format_explanations,
    model_tasks,
)
from cardiogate.pipeline.offline import (
    DICOMDIR,
    NO_SERIES,
    NOT_DICOM,
    FolderScan,
    format_skipped,
    scan_folder,
)
from cardiogate.pipeline.worker import JobWorker
from cardiogate.store import Store
from cardiogate.tasks import configure_tasks
from store_records import record_ct_series
from tiny_model import write_model, write_threshold_model

SMALL = {"n_slices": 10, "rows": 32, "columns": 32, "keep_phantom": False}
SCORED = "another reconstruction of this study is scored: series 2, 3 mm"

TASKS = configure_tasks()


def _study(root: Path) -> dict[str, str]:
    """A CT study as a PACS forwards it, written under ``root``: SeriesInstanceUIDs by
    role. Series 2 is the 3 mm calcium scan, 3 a 2.5 mm reconstruction of it, 4 a 1 mm
    one, 5 a CTA, 1 a one-slice localizer."""
    base = make_ct_series(1, slice_thickness_mm=3.0, **SMALL)
    study = base.datasets[0].StudyInstanceUID
    series = {
        "standard": base,
        "thinner": make_ct_series(2, slice_thickness_mm=2.5, study_instance_uid=study, **SMALL),
        "thin": make_ct_series(3, slice_thickness_mm=1.0, study_instance_uid=study, **SMALL),
        "cta": make_ct_series(4, contrast=True, study_instance_uid=study, **SMALL),
        "localizer": make_ct_series(5, study_instance_uid=study, **{**SMALL, "n_slices": 1}),
    }
    numbers = {"standard": 2, "thinner": 3, "thin": 4, "cta": 5, "localizer": 1}
    for role, s in series.items():
        for ds in s.datasets:
            ds.SeriesNumber = numbers[role]
            if role == "localizer":
                ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
                ds.SeriesDescription = "Topogram 0.6 T20s"
        write_series(s, root / role)
    return {role: s.datasets[0].SeriesInstanceUID for role, s in series.items()}


def _odd_files(root: Path) -> None:
    """A text file, an instance without SeriesInstanceUID, and a DICOMDIR."""
    (root / "notes.txt").write_text("not DICOM")
    for name, sop_class in (("orphan.dcm", "1.2.840.10008.5.1.4.1.1.2"), ("DICOMDIR", None)):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = sop_class or "1.2.840.10008.1.3.10"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[name])
        if sop_class:
            ds.SOPClassUID, ds.Modality = sop_class, "CT"
        ds.save_as(root / name, enforce_file_format=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[FolderScan, dict[str, str]]:
    root = tmp_path_factory.mktemp("explain") / "study"
    uids = _study(root)
    _odd_files(root)
    return scan_folder(root), uids


def _reasons(items: list[Explained]) -> dict[str, tuple[str | None, str]]:
    return {i.SeriesInstanceUID: (i.task, i.reason) for i in items}


def test_each_series_of_a_folder_gets_its_rule_or_why_none_matched(
    folder: tuple[FolderScan, dict[str, str]],
) -> None:
    scan, uids = folder
    items = explain_folder(scan, TASKS, {"calcium"})
    assert [i.SeriesNumber for i in items] == [1, 2, 3, 4, 5]  # ordered as the PACS numbers them
    assert _reasons(items) == {
        uids["localizer"]: (None, "localizer (ImageType LOCALIZER): not analysed"),
        uids["standard"]: ("calcium", "non-contrast axial CT, 3 mm slices"),
        uids["thinner"]: (None, SCORED),
        uids["thin"]: (None, "slice thickness 1 mm is outside 2-3.5 mm"),
        uids["cta"]: (None, "not scored: contrast-enhanced (ContrastBolusAgent is set)"),
    }
    assert {i.instances for i in items if i.SeriesNumber != 1} == {10}


def test_a_wider_window_routes_thin_slices_and_the_3mm_scan_is_still_scored(
    folder: tuple[FolderScan, dict[str, str]],
) -> None:
    scan, uids = folder
    rules = configure_tasks(routing={"calcium_slice_thickness_mm": (0.5, 3.5)})
    reasons = _reasons(explain_folder(scan, rules, {"calcium"}))
    assert reasons[uids["thin"]] == (None, SCORED)
    assert reasons[uids["standard"]] == ("calcium", "non-contrast axial CT, 3 mm slices")


def test_without_a_model_the_rule_says_none_is_loaded(
    folder: tuple[FolderScan, dict[str, str]], tmp_path: Path
) -> None:
    scan, uids = folder
    assert model_tasks(tmp_path, tuple(TASKS)) == set()
    reasons = _reasons(explain_folder(scan, TASKS, set()))
    assert reasons[uids["standard"]] == (None, "no calcium model is loaded")
    write_model(tmp_path / "calcium", task="calcium")
    write_model(tmp_path / "stenosis", task="stenosis")
    assert model_tasks(tmp_path, tuple(TASKS)) == {"calcium", "stenosis"}


def test_skipped_files_are_counted_by_reason(folder: tuple[FolderScan, dict[str, str]]) -> None:
    scan, _ = folder
    reasons = {s.path.name: s.reason for s in scan.skipped}
    assert reasons["notes.txt"] == NOT_DICOM
    assert reasons["orphan.dcm"] == NO_SERIES
    assert reasons["DICOMDIR"] == DICOMDIR
    text = format_skipped(scan)
    # five truth.json files (one per series) and notes.txt
    assert text.splitlines()[0] == "skipped 8 files:"
    assert f"  6 files: {NOT_DICOM}" in text.splitlines()
    assert f"  1 file: {NO_SERIES}" in text.splitlines()
    assert "    orphan.dcm" in text.splitlines()
    assert "    and 1 more" in text.splitlines()  # five paths shown for a reason, then counted


def test_the_table_lines_up_and_json_has_every_uid(
    folder: tuple[FolderScan, dict[str, str]],
) -> None:
    scan, uids = folder
    items = explain_folder(scan, TASKS, {"calcium"})
    lines = format_explanations(items, stored=False).splitlines()
    assert lines[0] == f"study {items[0].StudyInstanceUID}: 5 series"
    header, rows = lines[1], lines[2:]
    assert header.startswith("Series  Modality  Instances  Description")
    assert header.endswith("Routed to  Rule or reason")
    column = header.index("Routed to")
    assert [r[column:].split("  ")[0] for r in rows] == ["-", "calcium", "-", "-", "-"]
    assert rows[1].endswith("non-contrast axial CT, 3 mm slices")
    entries = as_json(items, stored=False)
    assert {e["SeriesInstanceUID"] for e in entries} == set(uids.values())
    assert all("job" not in e for e in entries)


STUDY = "1.2.826.0.1.3680043.10.19"


def _receive(store: Store, series: str, number: int, thickness: str, count: int = 12) -> str:
    return record_ct_series(store, STUDY, series, number, thickness, count)


def test_a_stored_study_shows_each_job_beside_todays_rule(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    store = Store(settings.effective_database_url)
    store.create_schema()
    engine = InferenceEngine({"calcium": load_model(write_threshold_model(tmp_path / "model"))})
    worker = JobWorker(settings, store, Spool(settings.spool_dir), engine)
    try:
        standard = _receive(store, f"{STUDY}.3", 3, "3")
        thin = _receive(store, f"{STUDY}.6", 6, "0.6")
        waiting = _receive(store, f"{STUDY}.7", 7, "3", count=1)  # not complete, not routed
        worker.route_completed([standard, thin])

        items = explain_study(store, STUDY, TASKS, {"calcium"})
        by_uid = {i.SeriesInstanceUID: i for i in items}
        assert (by_uid[standard].job_state, by_uid[standard].task) == ("queued", "calcium")
        assert by_uid[thin].job_state == "ignored"
        assert by_uid[thin].job_reason == by_uid[thin].reason
        assert by_uid[thin].reason == "slice thickness 0.6 mm is outside 2-3.5 mm"
        assert by_uid[waiting].job_state is None

        # after widening the window the rule names the scored scan; the job still says
        # what the service decided then
        wide = configure_tasks(routing={"calcium_slice_thickness_mm": (0.5, 3.5)})
        thin_now = {i.SeriesInstanceUID: i for i in explain_study(store, STUDY, wide, {"calcium"})}[
            thin
        ]
        assert thin_now.reason == "another reconstruction of this study is scored: series 3, 3 mm"
        table = format_explanations(explain_study(store, STUDY, wide, {"calcium"}), stored=True)
        assert "    job ignored: slice thickness 0.6 mm is outside 2-3.5 mm" in table.splitlines()
        assert table.splitlines()[1].split()[4] == "Job"
        entries = {e["SeriesInstanceUID"]: e for e in as_json(items, stored=True)}
        assert entries[thin]["job"] == {"state": "ignored", "reason": by_uid[thin].reason}
        assert entries[waiting]["job"] is None
        assert explain_study(store, "1.2.3.4", wide, {"calcium"}) == []
    finally:
        store.dispose()
