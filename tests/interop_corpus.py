"""The interoperability corpus: what real PACSs send, made at test time and never downloaded.

Its sources are the phantoms (``cardiogate_phantoms``) and the sample files that ship with
pydicom, pydicom-data and pynetdicom; dcmtk and GDCM rewrite them in other transfer syntaxes
and encapsulations, and ``dcmodify`` gives them the header defects seen in the field. Each
:class:`Case` (listed in ``interop_cases.py``) names its source, the steps that wrote it, its
defect and what a user should see (:class:`Expected`); :func:`build_corpus` writes every
case's files, each case with Study, Series and SOP Instance UIDs of its own.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pydicom
import pytest
from cardiogate_phantoms import make_ct_series, make_xa_cine
from pydicom.dataset import Dataset
from pydicom.uid import UID, generate_uid

from cardiogate.dicom.status import Status
from interop_sources import shipped_file
from peers import dcmtk

# A command run on each file ({in} -> {out}; without {in} it edits a copy, {out}, in place
# and runs once for all of a case's files), or a function of (in, out).
Step = tuple[str, ...] | Callable[[Path, Path], None]
Kind = Literal["analysed", "ignored", "refused", "gap", "resent"]

CT_SIZE: dict[str, Any] = {"n_slices": 16, "rows": 256, "columns": 256, "pixel_spacing_mm": 1.0}
XA_SIZE: dict[str, Any] = {"frames": 12, "rows": 256, "columns": 256}
LAD_75 = [{"vessel": "LAD", "position": 0.35, "percent": 75.0, "length_mm": 6.0}]
# name: (seed, what it is); the XA cine has a 75% LAD stenosis
PHANTOMS = {
    "ct": (0, "phantom CT, seed 0, 16-bit unsigned"),
    "ct-signed": (14, "phantom CT, seed 14, 16-bit signed"),
    "ct-12bit": (44, "phantom CT, seed 44, 12-bit"),
    "xa": (2, "phantom XA cine, 12 frames, LAD 75%"),
}


@dataclass(frozen=True)
class Expected:
    """What a user should see. ``analysed``: every instance stored and the series delivered
    with the result of its clean ``twin`` (``lossy`` widens the tolerances); ``ignored``:
    stored, and ignored for a reason matching ``reason``; ``refused``: the C-STORE answered
    ``status``; ``gap``: failed for a reason matching ``reason`` until the late slice
    arrives, then as ``twin``; ``resent``: the twin's instances again in another transfer
    syntax, which makes no new report version."""

    kind: Kind
    twin: str = ""
    reason: str = ""
    status: Status = Status.SUCCESS
    lossy: bool = False

    def __str__(self) -> str:
        if self.kind == "analysed":
            return f"same result as {self.twin}" + (" (lossy tolerance)" if self.lossy else "")
        if self.kind == "ignored":
            return f"ignored, reason matching /{self.reason}/"
        if self.kind == "refused":
            return f"refused with 0x{self.status:04X} {self.status.name}"
        if self.kind == "gap":
            return f"failed /{self.reason}/, then after the late slice as {self.twin}"
        return f"no new report version of {self.twin}"


@dataclass(frozen=True)
class Case:
    """One corpus entry: one series (or one refused file) sent over one association. Its
    input is a ``phantom`` series, data sets ``made`` by a function, or a ``shipped`` file;
    the ``steps`` rewrite it."""

    id: str
    source: str
    expected: Expected
    defect: str = ""
    phantom: str = ""
    made: Callable[[], list[Dataset]] | None = None
    shipped: str = ""
    steps: tuple[Step, ...] = ()
    label: str = ""  # the tool column, when the steps' own words are too long
    uids_of: str = ""  # another case whose UIDs these files carry (a re-send)
    as_shipped: bool = False  # the shipped file byte for byte, its UIDs included

    @property
    def tool(self) -> str:
        if self.label or not self.steps:
            return self.label or ("as shipped" if self.shipped else "pydicom")
        return ", then ".join(
            step.__name__.replace("_", " ")
            if callable(step)
            else " ".join(a for a in step if a not in ("{in}", "{out}"))
            for step in self.steps
        )


@cache
def phantom(name: str) -> tuple[Dataset, ...]:
    """A phantom series the cases start from, made once per session."""
    seed = PHANTOMS[name][0]
    if name == "xa":
        return tuple(make_xa_cine(seed, stenoses=LAD_75, artery="LCA", **XA_SIZE).datasets)
    return tuple(make_ct_series(seed, keep_phantom=False, **CT_SIZE).datasets)


@dataclass(frozen=True)
class Built:
    """A case's files, in sending order, their series and transfer syntax."""

    case: Case
    files: list[Path]
    SeriesInstanceUID: str
    transfer_syntax: str


def _uid(key: str, *parts: str) -> str:
    return str(generate_uid(entropy_srcs=["cardiogate-interop-corpus", key, *parts]))


def _renamed(datasets: list[Dataset], key: str) -> list[Dataset]:
    """``datasets`` in a study and series of their own, named by ``key``."""
    study, series = _uid(key, "study"), _uid(key, "series")
    for index, ds in enumerate(datasets):
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = _uid(key, "instance", str(index))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    return datasets


def _tool(name: str) -> str:
    if not name.startswith("gdcm"):
        return dcmtk(name)
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):  # .ci/run installs libgdcm-tools
            pytest.fail(f"GDCM's {name} is not installed")
        pytest.skip(f"GDCM's {name} is not installed")
    return found


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed: {done.stderr[-400:]}")


def _inputs(case: Case, folder: Path) -> list[Path]:
    """The case's files before its steps, written by pydicom (a shipped file sent as
    shipped is copied); none when its sample file is not installed."""
    folder.mkdir(parents=True)
    if case.shipped:
        path = shipped_file(case.shipped)
        if path is None:
            return []
        if case.as_shipped:
            return [Path(shutil.copyfile(path, folder / path.name))]
        with warnings.catch_warnings():  # vendors' invalid values are what the case is for
            warnings.simplefilter("ignore", UserWarning)
            return _written(_renamed([pydicom.dcmread(path)], case.id), folder)
    made = case.made() if case.made else list(phantom(case.phantom))
    datasets = [copy.deepcopy(ds) for ds in made]
    return _written(_renamed(datasets, case.uids_of or case.id), folder)


def _written(datasets: list[Dataset], folder: Path) -> list[Path]:
    paths = [folder / f"{index:03d}.dcm" for index in range(len(datasets))]
    for ds, path in zip(datasets, paths, strict=True):
        ds.save_as(path, enforce_file_format=True)
    return paths


def _through_steps(case: Case, paths: list[Path], root: Path) -> list[Path]:
    for number, step in enumerate(case.steps, 1):
        out = [root / f"step{number}" / path.name for path in paths]
        out[0].parent.mkdir(parents=True, exist_ok=True)
        for src, dst in zip(paths, out, strict=True):
            if callable(step):
                step(src, dst)
            elif "{in}" in step:
                _run([_tool(step[0])] + [a.format(**{"in": src, "out": dst}) for a in step[1:]])
            else:
                shutil.copyfile(src, dst)
        if not callable(step) and "{in}" not in step:
            _run([_tool(step[0]), *step[1:-1], *map(str, out)])
        paths = out
    return paths


def _in_place(case: Case) -> bool:
    return any(not callable(step) and "{in}" not in step for step in case.steps)


def build_corpus(root: Path, cases: list[Case]) -> dict[str, Built]:
    """Every case's files under ``root``/<case id>, the tools on two threads per core; a
    case whose sample file is not installed is left out."""
    inputs = {case.id: _inputs(case, root / case.id / "in") for case in cases}
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        futures = {
            case.id: [  # one task per file, or one per case for a tool editing in place
                pool.submit(_through_steps, case, chunk, root / case.id)
                for chunk in ([paths] if _in_place(case) else [[p] for p in paths])
            ]
            for case in cases
            for paths in [inputs[case.id]]
        }
        files = {key: [p for f in fs for p in f.result()] for key, fs in futures.items()}
    built = {}
    for case in cases:
        if not files[case.id]:
            continue
        header = pydicom.dcmread(files[case.id][0], stop_before_pixels=True, force=True)
        syntax = UID(str(header.file_meta.TransferSyntaxUID)).keyword
        uid = str(header.get("SeriesInstanceUID", ""))
        built[case.id] = Built(case, files[case.id], uid, syntax)
    return built
